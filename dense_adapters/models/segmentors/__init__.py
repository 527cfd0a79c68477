"""Segmentors (full models around a backbone and a head) that mmseg lacks or gets wrong."""
