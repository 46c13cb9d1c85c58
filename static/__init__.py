"""Static assets for the web UI (CSS, JS, images), shipped as package data."""
