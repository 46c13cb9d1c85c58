"""Customer-managed relationships: the profile told once, receipts, and data rights."""
