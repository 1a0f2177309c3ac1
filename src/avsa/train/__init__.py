"""avsa.train"""
