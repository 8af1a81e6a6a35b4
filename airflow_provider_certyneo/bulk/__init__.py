"""Sending many contracts from one task: the manifest, the progress journal, the paced pipeline."""
