"""Explicit schemas of the Sentinel tables and definitions of every lake table."""
