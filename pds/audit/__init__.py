"""The append-only, tamper-evident access log: RFC 9162 Merkle tree and C2SP checkpoints."""
