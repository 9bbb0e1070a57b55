"""Widgets shared by the analyst pages (Trainer, Thresholds, Embeddings): a job panel driving one
background generator with progress/ETA/cancel, loss hyper-parameter forms, and the plots those pages
draw (score distributions, circle/sphere views of features)."""
