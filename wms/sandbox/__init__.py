"""Sandboxes: faithful fakes of remote APIs served on loopback, with fault switches."""
