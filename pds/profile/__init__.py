"""What the owner tells businesses about themselves: the profile (one current record) and
intentions (what they plan to buy or switch), each change noted in the change feed."""
