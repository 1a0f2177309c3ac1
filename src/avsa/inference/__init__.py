"""avsa.inference: a trained model applied to audio and video (embeddings, localization heatmaps)."""
