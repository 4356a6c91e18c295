"""`make bench`: palfrey against its peers, one server at a time, on loopback.

Modules, one job each: `servers` (how to start each server), `scenarios` (what is measured),
`process` (start/ready/stop), `wrk` (run and parse wrk), `wsclient` (WebSocket load client),
`rss` (memory of a process tree), `runner` (rounds), `results`, `report` (Markdown), `chart` (PNG),
`machine` (versions), `cli` (knobs).
"""
