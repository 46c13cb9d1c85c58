"""Telling businesses that something changed: subscriptions, signed deliveries (Standard
Webhooks), the background sender, and the guard on where a webhook may go."""
