"""avsa.models"""
