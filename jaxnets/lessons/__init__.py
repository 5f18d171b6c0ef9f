"""The tutorials' lessons that are not training runs: autograd (seed 003) and tensor basics
(seed 004), each a set of pure functions that ``parity`` compares with torch value by value."""
