"""`roberta serve` (HTTP server with dynamic batching) and `roberta run --engine ray` (Ray Data scale-out).

Nothing here is imported by `import roberta`: the server needs `pip install 'roberta[serve]'`, the Ray engine
`pip install 'roberta[ray]'`. batcher.py has no dependency beyond the standard library.
"""
