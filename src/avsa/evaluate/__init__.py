"""avsa.evaluate"""
