"""The profile stage: latency, throughput, memory and accuracy of an artifact side by side with its
PyTorch student and the teacher, each measured in its own process. Needs torch for the student and teacher."""
