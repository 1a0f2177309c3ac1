"""avsa.data"""
