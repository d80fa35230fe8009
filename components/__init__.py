"""KFP components of carbon-kfp: one folder each with component.py, README.md and tests/."""
