"""The owner's policy files (TOML ``[[rule]]`` tables): validated into ``pds.policy`` rules
and watched for changes. The engine itself (``pds.policy``) reads no files."""
