"""How a run executes: resumable parts, locks, shards, engines (local, Ray Data, Ray tasks)."""
