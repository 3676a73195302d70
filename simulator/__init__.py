"""Firmware simulator: the device model that stands in for hardware in tests and demos."""
