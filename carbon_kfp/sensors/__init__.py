"""Device sensors: each answers how many joules since start() and how we know (base.Reading)."""
