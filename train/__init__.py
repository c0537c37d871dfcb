"""Training side: datasets, features cache, augmentation, models, fitting, evaluation, EDA.

Heavy dependencies (TensorFlow, matplotlib, librosa) are imported only inside
the functions that need them; importing this package costs NumPy only.
"""
