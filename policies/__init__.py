"""Policy templates shipped with pds (TOML), shipped as package data."""
