"""`sagebert status`: an endpoint, a training, tuning or transform job, or a list of both kinds."""

from __future__ import annotations

from ..aws import autoscaling, endpoints, jobs
from ..aws.clients import AwsClients
from ..aws.gate import metrics_from_tags
from ..aws.validation import InvalidRequestError
from . import options
from .output import FAILED, OK, say
from .progress import (
    explain_endpoint,
    follow_job,
    follow_transform,
    follow_tuning,
    print_training_summary,
    print_trials,
)


def register(sub) -> None:
    p = sub.add_parser("status", help="show an endpoint or a job, or list endpoints and recent training jobs")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--endpoint", metavar="NAME")
    which.add_argument("--training-job", metavar="JOB")
    which.add_argument("--tuning-job", metavar="NAME")
    which.add_argument("--transform-job", metavar="NAME")
    p.add_argument("--follow", action="store_true", help="with a job: follow it until it ends")
    p.add_argument(
        "--state",
        action="store_true",
        help="with --endpoint: print one word for scripts — its EndpointStatus, or 'missing' — and exit 0",
    )
    options.waiting(p)
    p.set_defaults(handler=run)


def _training_job(args, clients: AwsClients) -> int:
    if args.follow:
        return follow_job(clients, args.training_job, args.poll_interval)
    job = jobs.describe_training_job(clients, args.training_job)
    say(f"Training job {job['TrainingJobName']}: {job['TrainingJobStatus']} ({job.get('SecondaryStatus', '')})")
    resources = job.get("ResourceConfig", {})
    spot = "managed spot" if job.get("EnableManagedSpotTraining") else "on-demand"
    say(f"  instances          {resources.get('InstanceCount')} x {resources.get('InstanceType')}, {spot}")
    say(f"  image              {job['AlgorithmSpecification'].get('TrainingImage')}")
    for transition in job.get("SecondaryStatusTransitions", []):
        say(f"  {transition['Status']:<18} {transition.get('StatusMessage', '')}")
    if job.get("FailureReason"):
        say(f"  failure reason     {job['FailureReason']}")
    print_training_summary(job)
    return OK if job["TrainingJobStatus"] in ("Completed", "InProgress", "Stopping") else FAILED


def _endpoint(args, clients: AwsClients) -> int:
    if args.state:
        found = endpoints.find_endpoint(clients, args.endpoint)
        say(found["EndpointStatus"] if found else "missing")
        return OK
    current = endpoints.running(clients, args.endpoint)
    endpoint, variant, model, container = current.endpoint, current.variant, current.model, current.container
    say(f"Endpoint {endpoint['EndpointName']}: {endpoint['EndpointStatus']}")
    say(f"  config             {endpoint['EndpointConfigName']}")
    previous = endpoints.previous_config(clients, endpoint)
    if previous:
        say(f"  previous config    {previous} (sagebert rollback --endpoint {args.endpoint})")
    serverless = variant.get("ServerlessConfig")
    if serverless:
        say(
            f"  variant            {variant['VariantName']}: serverless, {serverless['MemorySizeInMB']} MB, "
            f"up to {serverless['MaxConcurrency']} concurrent"
        )
    else:
        say(
            f"  variant            {variant['VariantName']}: {current.instance_count} x {variant.get('InstanceType')} "
            f"(config's initial count {variant.get('InitialInstanceCount')})"
        )
        scaling = autoscaling.current(clients, args.endpoint, variant["VariantName"])
        say(f"  autoscaling        {scaling.describe() if scaling else 'none'}")
    if current.config.get("AsyncInferenceConfig"):
        say(f"  async answers      {current.config['AsyncInferenceConfig']['OutputConfig'].get('S3OutputPath')}")
    capture = current.config.get("DataCaptureConfig")
    if capture:
        say(f"  data capture       {capture['InitialSamplingPercentage']}% to {capture['DestinationS3Uri']}")
    mode = "model package" if container.model_package else ("MultiModel" if container.multi_model else "SingleModel")
    say(f"  model              {model['ModelName']} ({mode})")
    say(f"  image              {container.image or container.model_package}")
    if container.model_data:
        say(f"  model data         {container.model_data}")
    for name, value in sorted(container.environment.items()):
        say(f"  env                {name}={value}")
    for name, value in sorted(metrics_from_tags(endpoints.tags_of(clients, model["ModelArn"])).items()):
        say(f"  metric             {name} = {value:.4f}")
    if endpoint.get("FailureReason"):
        say(f"  failure reason     {endpoint['FailureReason']}")
        explain_endpoint(clients, args.endpoint, endpoint)
    return OK if endpoint["EndpointStatus"] not in ("Failed", "UpdateRollbackFailed") else FAILED


def _tuning_job(args, clients: AwsClients) -> int:
    if args.follow:
        return follow_tuning(clients, args.tuning_job, args.poll_interval)
    job = jobs.describe_tuning_job(clients, args.tuning_job)
    say(f"Tuning job {args.tuning_job}: {job['HyperParameterTuningJobStatus']}")
    print_trials(clients, job)
    return OK if job["HyperParameterTuningJobStatus"] not in ("Failed",) else FAILED


def _transform_job(args, clients: AwsClients) -> int:
    if args.follow:
        return follow_transform(clients, args.transform_job, args.poll_interval)
    job = jobs.describe_transform_job(clients, args.transform_job)
    say(f"Transform job {args.transform_job}: {job['TransformJobStatus']}")
    say(f"  output             {job['TransformOutput']['S3OutputPath']}")
    if job.get("FailureReason"):
        say(f"  failure reason     {job['FailureReason']}")
    return OK if job["TransformJobStatus"] not in ("Failed", "Stopped") else FAILED


def run(args, clients: AwsClients) -> int:
    if args.state and not args.endpoint:
        raise InvalidRequestError("--state goes with --endpoint NAME.", "Add --endpoint NAME, or drop --state.")
    if args.training_job:
        return _training_job(args, clients)
    if args.tuning_job:
        return _tuning_job(args, clients)
    if args.transform_job:
        return _transform_job(args, clients)
    if args.endpoint:
        return _endpoint(args, clients)
    say("Endpoints:")
    for endpoint in endpoints.list_endpoints(clients):
        say(f"  {endpoint['EndpointName']:<40} {endpoint['EndpointStatus']}")
    say("Recent training jobs:")
    for job in jobs.recent_training_jobs(clients):
        say(f"  {job['TrainingJobName']:<40} {job['TrainingJobStatus']}")
    return OK
