"""Extra links: the envelope's page in the Certyneo dashboard."""
