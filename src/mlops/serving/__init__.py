"""Serving: predictions in the task's schema, the data contract at the door, the
prediction log.
"""
