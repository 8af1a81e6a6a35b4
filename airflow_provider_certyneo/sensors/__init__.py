"""The envelope sensor (poke, reschedule or deferrable)."""
