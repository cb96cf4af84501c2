"""Annotated crowd data, shared by training and evaluation: point-annotated image folders and their
fixed validation split (:mod:`~crowdwatch.data.folders`), count and localization scores
(:mod:`~crowdwatch.data.scoring`), and synthetic annotated folders for tests
(:mod:`~crowdwatch.data.synthetic`).
"""
