"""Browser tests (headless Chromium): the demo career site and the interviewer page."""
