"""Triggers: waiting on envelopes in the triggerer, and the asset watcher."""
