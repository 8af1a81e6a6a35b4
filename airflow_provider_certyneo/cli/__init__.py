"""Console scripts: ``certyneo-webhooks`` (register, list, delete)."""
