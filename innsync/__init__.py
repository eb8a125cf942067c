"""innsync: channel manager and backup system for a hotel PMS."""
__version__ = "0.1.0"
