"""A SageMaker training job as local processes: the real toolkit on simulated hosts.

Used by the operator CLI (`trainops local-train`) and by the embedded AWS (localaws runs every
CreateTrainingJob through it); depends on neither. Each host runs in a stand-in for the
training image (image_standin.py), in a private network namespace when the job is isolated
(netns.py), with checkpoints synced to a store as SageMaker syncs them to S3.
"""
