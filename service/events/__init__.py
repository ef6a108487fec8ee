"""Live events: one poller per API process reads the change log and fans it out to streams."""
