"""Running a sweep on Ray Tune: the trainable around the shared trainer, ASHA, the MLflow and
TensorBoard record, the progress lines, the experiment's life (start, resume, move aside), and
the two things that run: a sweep and a confirmation."""
