"""avsa.media"""
