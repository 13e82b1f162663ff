"""Copies each new access-log and invocation-log object into the write-once evidence bucket."""
