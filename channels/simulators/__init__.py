"""channels/simulators."""
