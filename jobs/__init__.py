"""The trailhouse batch job: discovery, reading, the lake, state and the CLI."""
