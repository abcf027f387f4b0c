"""The browser worker: runs one job's action in Chromium and reports it to Step Functions."""
