"""Ticket triage: which of an organization's categories a support ticket belongs to (or none),
how urgent it is, and what language it is written in. Pure Python, no Django."""
