"""Previews: pictures of each video and camera hour (contact sheet, activity chart) and its tracks table."""
