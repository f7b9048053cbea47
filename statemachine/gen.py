"""Writes the two state machines of a failback run: the plan (statemachine/failback.asl.json, the
    parent execution: the plan's check, its steps in order, the waits, approvals and verdicts
    between them, the run's summary) and a step (statemachine/step.asl.json, a child execution
    per step: its launch rounds and tracking calls, to the step's last call); and the rehearsal's
    (statemachine/rehearsal.asl.json: a stored plan dry-run on a schedule, judged and counted). They are written
    here, in Python, because their JSONata expressions share pieces (the envelope, the clock, the
    deferred count) that raw JSON would repeat. statemachine/test/run checks the committed JSON
    is what this prints:
      python3 statemachine/gen.py plan > statemachine/failback.asl.json
      python3 statemachine/gen.py step > statemachine/step.asl.json
      python3 statemachine/gen.py rehearsal > statemachine/rehearsal.asl.json
"""
import json, collections
O = collections.OrderedDict

ENVELOPE = "$isEvent := $exists($states.input.`detail-type`) and $exists($states.input.detail); $request := $isEvent ? $states.input.detail : $states.input"
RUN_ID = "$type($request.runId) = 'string' ? $request.runId : ($isEvent and $type($states.input.id) = 'string' ? $states.input.id : $states.context.Execution.Name)"
# The step's own clock: from the state that started it (StartStep), so a wait or an approval
# before the step is not counted against its TimeLimitSeconds.
ELAPSED = "($toMillis($states.context.State.EnteredTime) - $stepStartMillis) / 1000"
DEFERRED_COUNT = "($count($deferredRecoveryInstanceIDs) + $count($deferredSourceServerIDs))"
# Where the step's loop stands, sent with every launch and track call: the function answers what
# comes next from it (`next`; on the last call `stepEnd`). The Choice states only follow that.
LOOP = (
    "{\"limits\": {\"maxRounds\": $maxRounds, \"timeLimitSeconds\": $timeLimitSeconds, \"trackIntervalSeconds\": $trackIntervalSeconds}, "
    f"\"elapsedSeconds\": $floor({ELAPSED}), \"rounds\": $roundsDone, \"runningJobs\": $count($runningJobIDs), "
    f"\"deferred\": {DEFERRED_COUNT}, \"deferredReasons\": [$distinct($deferredGroups.reason)], "
    "\"launchError\": $launchError != null, \"launchErrorName\": $launchError.Error, \"trackingErrors\": $trackingErrors, \"calls\": $calls, "
    "\"executionSeconds\": $floor(($toMillis($states.context.State.EnteredTime) - $toMillis($states.context.Execution.StartTime)) / 1000), "
    "\"waiting\": $waiting, \"jobSeconds\": $jobSeconds}"
)
# A tracking call that did not answer (after its retries) has no `next` to follow: it is tried
# again at the next interval, this many times in a row, then the step sums up (TRACKING_ERROR) --
# src/track/end.rs MAX_TRACKING_ERRORS, which decides the step's end from the count.
MAX_TRACKING_ERRORS = 3
LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]
# The function's own errors that say sending again cannot help: a refused request, DRS not usable
# here. (DrsReadFailed, DRS unreadable for now, is retried where it can come.)
NOT_RETRIED = ["InvalidFailbackRequest", "DrsAccountNotInitialized", "DrsAccessDenied", "DrsClientMisconfigured", "TargetUnreachable"]
def j(e): return "{% " + e + " %}"
# The account and region a step execution's calls act in, when its place is not the function's own.
TARGET = "$target ? {\"target\": $target} : {}"
# What a fresh step execution needs to take the step over (the function answered next: handover):
# the step, and its loop as it stands. The deploy-time settings are read again; calls start at 0.
CARRIED = ["runId", "tags", "step", "stepIndex", "stepStartMillis", "target", "firstOfRun",
           "roundsDone", "trackingCalls", "launched", "skipped", "rejected", "jobIDs", "runningJobIDs",
           "reportedJobIDs", "notLaunched", "deferredGroups", "deferredRecoveryInstanceIDs",
           "deferredSourceServerIDs", "held", "launchError", "failedLaunch", "trackingErrors", "trackingError", "waiting", "jobSeconds"]
# An execution stops after this long whatever it is doing (TIMED_OUT): no run is left waiting for
# ever. Its end is not silent -- the stack's ExecutionEndedRule has the function publish the run's
# Failback Run Finished (status TIMED_OUT, what DRS shows) and the executions alarm fires -- and a
# redrive continues the run where it stopped. 90 days: far beyond any failback that runs on its own
# (a step's TimeLimitSeconds is at most 12 h); a plan whose waits and approvals could take it
# near is refused when it is checked (src/plan/duration.rs, given these limits).
RUN_TIMEOUT_SECONDS = 90 * 24 * 3600

# The deploy-time settings, read once by each execution that uses them.
STEP_SETTINGS = O(
    maxRounds=j("$floor($number('${MaxRounds}'))"),
    trackIntervalSeconds=j("$floor($number('${TrackIntervalSeconds}'))"),
    timeLimitSeconds=j("$floor($number('${TimeLimitSeconds}'))"),
)
PLAN_SETTINGS = O(
    approvalTimeoutSeconds=j("$floor($number('${ApprovalTimeoutSeconds}'))"),
    approvalPendingAlarmSeconds=j("$floor($number('${ApprovalPendingAlarmSeconds}'))"),
    timeLimitSeconds=j("$floor($number('${TimeLimitSeconds}'))"),
    trackIntervalSeconds=j("$floor($number('${TrackIntervalSeconds}'))"),
)
# Each call gets the function's timeout and this much more before it counts as failed (and is
# sent again): the Lambda service's own time around the function's.
TASK_TIMEOUT = j("$floor($number('${FunctionTimeoutSeconds}')) + 30")

def retry(attempts, extra=(), final=()):
    # The function's refusals (and `final`, its other errors that say so) are final. Lambda service errors come before the function runs.
    # Any other failure is retried whatever Lambda names it: the integration names a failed
    # invocation after the errorType it reports -- the process killed (Runtime.ExitError), the
    # function's timeout (Sandbox.Timedout), a panic (its type) -- else Lambda.Unknown, and no
    # answer in time is States.Timeout. It may come after the function started work (DRS took a
    # launch): resending is safe, the same runId finds what the first attempt did.
    return [
        O(ErrorEquals=NOT_RETRIED + list(final), MaxAttempts=0),
        O(ErrorEquals=LAMBDA_ERRORS, IntervalSeconds=2, BackoffRate=2, MaxAttempts=attempts, JitterStrategy="FULL"),
        *extra,
        O(ErrorEquals=["States.ALL"], IntervalSeconds=5, BackoffRate=2, MaxAttempts=2, JitterStrategy="FULL"),
    ]

DRS_READ_FAILED = O(ErrorEquals=["DrsReadFailed"], IntervalSeconds=30, BackoffRate=2, MaxAttempts=5, JitterStrategy="FULL")
EVENT_RETRY = [O(ErrorEquals=["States.ALL"], IntervalSeconds=2, BackoffRate=2, MaxAttempts=3, JitterStrategy="FULL")]
# The errors of the approval request's PutEvents call itself: the request could not be published,
# so nobody was asked. Documented: EventBridge.FailedEntry (the optimized integration fails the
# task with it when PutEvents answers FailedEntryCount > 0, e.g. a throttled entry). Not documented
# for this integration: the names of the call's service errors. They are taken to follow the
# other optimized integrations ("Lambda." + the SDK's exception: Lambda.ServiceException,
# Lambda.AWSLambdaException, Lambda.SdkClientException) and the AWS SDK integrations' rule
# (ServiceName.ErrorName, Exception suffixed): EventBridge.AmazonEventBridgeException and
# EventBridgeException (the Java SDK v1 / v2 base exceptions, under which an error the SDK does
# not model, such as throttling, would come), InternalException (the error PutEvents' API
# reference lists), ThrottlingException, SdkClientException (no answer from EventBridge). An
# EventBridge error named otherwise falls to States.ALL below (APPROVAL_REFUSED, its name kept).
# States.Timeout (no answer in time) is not among them, nor is anything an operator sends with
# send-task-failure -- an operator answering with one of these names would be taken for a failed
# publish and asked again.
APPROVAL_PUBLISH_ERRORS = [
    "EventBridge.AmazonEventBridgeException", "EventBridge.EventBridgeException", "EventBridge.InternalException",
    "EventBridge.ThrottlingException", "EventBridge.SdkClientException", "EventBridge.FailedEntry",
]

# The state machines' own metrics (what only they see: an event they could not publish, an approval
# still waiting, a rehearsal's verdict), beside the function's, under the same namespace and
# dimension, for the stack's alarms.
PUT_METRIC_DATA = "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
METRIC_RETRY = [O(ErrorEquals=["States.ALL"], IntervalSeconds=2, BackoffRate=2, MaxAttempts=1, JitterStrategy="FULL")]

def metric(comment, name, value, next_, caught=None):
    """A Task writing one data point of `name` (a Count) and going on to `next_` with its input.
    A metric that cannot be written does not stop the run (`caught`: where it goes then, `next_`
    unless said)."""
    return O(
        Type="Task",
        Comment=comment,
        Resource=PUT_METRIC_DATA,
        Arguments=O(Namespace="${MetricsNamespace}", MetricData=[O(MetricName=name, Dimensions=[O(Name="service", Value="drs-failback")], Value=value, Unit="Count")]),
        Retry=METRIC_RETRY,
        Catch=[O(ErrorEquals=["States.ALL"], Output=j("$states.input"), Next=caught or next_)],
        Output=j("$states.input"),
        Next=next_,
    )

def not_published(what, next_):
    """Counts an event this state machine could not publish, after its retries (EventsNotPublished,
    which the events-not-published alarm watches beside the function's own count)."""
    return metric(f"{what} could not be published, after its retries: counted (EventsNotPublished) for the events-not-published alarm; the run goes on.", "EventsNotPublished", 1, next_)

def event(detail_type, detail):
    """One PutEvents entry on the result bus, from the state machine itself."""
    return O(EventBusName="${ResultEventBusName}", Source="${EventSource}", DetailType=detail_type, Detail=j(detail))

P = "$states.result.Payload"
# What bounds a run's length, sent with a plan's check (a rehearsal's too), so that a plan that
# could outlast its execution is refused (src/plan/duration.rs).
PLAN_LIMITS = f"{{\"timeLimitSeconds\": $timeLimitSeconds, \"approvalTimeoutSeconds\": $approvalTimeoutSeconds, \"runTimeoutSeconds\": {RUN_TIMEOUT_SECONDS}, \"trackIntervalSeconds\": $trackIntervalSeconds}}"
# The steps after the current one (a list, also of one or none).
LATER_STEPS = "$filter($steps, function($v, $i) { $i > $stepIndex })"
plan_states = O()
place_states = O()
step_states = O()
# A step's wait for readiness, sent with each of its launch rounds when it has one.
WAIT_FOR_READY = "$step.waitForReadySeconds > 0 ? {\"waitForReadySeconds\": $step.waitForReadySeconds} : {}"
# The instances the last round announced waiting for readiness, by the state it announced each in
# (its REPLICATING groups, their code as the state): the function announces only what changed.
ANNOUNCED = "($w := $deferredGroups[reason = \"REPLICATING\"]; $count($w) > 0 ? {\"waiting\": [$w.{\"state\": code, \"recoveryInstanceIDs\": recoveryInstanceIDs}]} : {})"
# A step's first launch: its ids and selector as the plan has them, with the run id, the step's
# name and the original tags; a selector step also gets the ids every other step names
# (otherSteps), which its selector leaves to them. ($s: the step.)
FIRST_LAUNCH = "($s := $step; $merge([{\"runId\": $runId}, $tags ? {\"tags\": $tags} : {}, {\"step\": $s.name}, $exists($s.target) ? {\"target\": $s.target} : {}, $exists($s.recoveryInstanceIDs) ? {\"recoveryInstanceIDs\": $s.recoveryInstanceIDs} : {}, $exists($s.sourceServerIDs) ? {\"sourceServerIDs\": $s.sourceServerIDs} : {}, $exists($s.selector) ? {\"selector\": $s.selector, \"otherSteps\": $otherSteps} : {}, " + WAIT_FOR_READY + "]))"
# The ids every other step names in the same account and region as the group ($g), which a
# selector there leaves to them.
PLACE_KEY = "function($t) { $exists($t) ? $t.account & \"/\" & $t.region : \"own\" }"
OTHER_STEPS = "($g := $states.context.Map.Item.Value; $key := " + PLACE_KEY + "; [$steps[name != $step.name].($n := name; groups[$key(target) = $key($g.target) and ($exists(recoveryInstanceIDs) or $exists(sourceServerIDs))].$merge([{\"step\": $n}, $exists(recoveryInstanceIDs) ? {\"recoveryInstanceIDs\": recoveryInstanceIDs} : {}, $exists(sourceServerIDs) ? {\"sourceServerIDs\": sourceServerIDs} : {}]))])"
plan_states["ReadRequest"] = O(
    Type="Pass",
    Comment="Unwraps an EventBridge envelope, fixes the run id (the request's, else the event id, else the execution name) so a retried or repeated execution is the same run, keeps the tags for every launch, reads the deploy-time settings once. The plan call gets the request as given, with the run id set.",
    Assign=O(
        runId=j(f"({ENVELOPE}; {RUN_ID})"),
        # The execution the run started in: its step executions are named after it and the run.
        origin=j("$states.context.Execution.Name"),
        tags=j(f"({ENVELOPE}; $type($request.tags) = 'object' ? $request.tags : null)"),
        **PLAN_SETTINGS,
        steps=[], stepIndex=-1, results=[], stepResult=None, finish=None, finishCalls=0, finishApproval=None,
        approvalReminders=0, approvalSinceMillis=0,
    ),
    Output=j(f"({ENVELOPE}; $merge([$request, {{\"runId\": {RUN_ID}}}]))"),
    Next="Plan",
)
plan_states["Plan"] = O(
    Type="Task",
    Comment="The function validates the plan (a plain launch request is a plan of one step named failback) and answers its steps normalized, defaults filled in, each with the number of recovery instances it resolves to now; a dry run adds each step's counts, planned job sizes and outcomes. Read-only: retried like a tracking call. A refused plan ends the run before anything is launched; any other failure, after the retries, fails the execution at this call, which a redrive makes again.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    # With what bounds the run's length, so that a plan that could outlast this execution is refused.
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=j(f"$merge([$states.input, {{\"action\": \"plan\", \"runId\": $runId, \"limits\": {PLAN_LIMITS}}}])")),
    Retry=retry(6, [DRS_READ_FAILED]),
    Catch=[
        O(ErrorEquals=["InvalidFailbackRequest"], Output=j("$states.errorOutput"), Next="RequestRefused"),
        O(ErrorEquals=["DrsAccountNotInitialized", "DrsAccessDenied"], Output=j("$states.errorOutput"), Next="DrsNotUsable"),
        # Any other failure, after its retries, fails the execution here: a redrive checks the
        # plan again.
    ],
    Assign=O(steps=j(f"[{P}.steps]"), finish=j(f"$exists({P}.finish) ? {P}.finish : null")),
    Output=j(P),
    Next="Planned",
)
plan_states["Planned"] = O(
    Type="Choice",
    Comment="A dry run ends with the plan; otherwise the steps run in order.",
    Choices=[O(Condition=j("$states.input.dryRun = true"), Next="DryRunPlanned")],
    Default="StartStep",
)
plan_states["StartStep"] = O(
    Type="Pass",
    Comment="The next step: the step before it filed with the run's results, its clock started (TimeLimitSeconds counts from here).",
    Assign=O(
        stepIndex=j("$stepIndex + 1"),
        step=j("$steps[$stepIndex + 1]"),
        results=j("$stepResult = null ? $results : $append($results, [$stepResult])"),
        stepResult=None,
        stepStartMillis=j("$toMillis($states.context.State.EnteredTime)"),
    ),
    Output=j("{\"runId\": $runId, \"step\": $steps[$stepIndex + 1].name}"),
    Next="PublishStepStarted",
)
plan_states["PublishStepStarted"] = O(
    Type="Task",
    Comment="Failback Step Started on the result bus. An event that cannot be published does not stop the failback.",
    Resource="arn:aws:states:::events:putEvents",
    Arguments=O(Entries=[event("Failback Step Started", "{\"runId\": $runId, \"step\": $step.name, \"index\": $stepIndex, \"steps\": $count($steps), \"instances\": $step.instances}")]),
    Retry=EVENT_RETRY,
    Catch=[O(ErrorEquals=["States.ALL"], Output=j("$states.input"), Next="StepStartedNotPublished")],
    Output=j("$states.input"),
    Next="RunPlaces",
)
plan_states["StepStartedNotPublished"] = not_published("Failback Step Started", "RunPlaces")
plan_states["RunPlaces"] = O(
    Type="Map",
    Comment="The step in each account and region it reaches (its groups, one for the function's own only in the common case), side by side: each a child execution of its own (Distributed Map), which runs the step's launch-and-track loop there as a step execution (and, past its share of calls, in fresh ones) and ends with that place's summary. Each has its own history and is redriven alone: one that fails fails the Map Run, and a redrive of this execution redrives only the places that did not end well. How many run at once: TargetConcurrency.",
    Items=j("[$step.groups]"),
    ItemSelector=j("{\"runId\": $runId, \"origin\": $origin, \"tags\": $tags, \"stepIndex\": $stepIndex, \"stepStartMillis\": $stepStartMillis, \"place\": $states.context.Map.Item.Index, "
        # The run's first launch, refused before any job existed, ends the run: only when the
        # step has no other place that may have launched.
        "\"firstOfRun\": $stepIndex = 0 and $count($step.groups) = 1, "
        # The place's step: its name and rules, its instances there; across several places
        # maxFailed counts every place, so the step's sum applies it (SumStep), not a place's.
        "\"step\": $merge([$sift($step, function($v, $k) { $k in [\"name\", \"waitForReadySeconds\"] }), {\"maxFailed\": $count($step.groups) = 1 ? $step.maxFailed : null}, $sift($states.context.Map.Item.Value, function($v, $k) { $k in [\"target\", \"recoveryInstanceIDs\", \"sourceServerIDs\", \"selector\", \"critical\"] })]), "
        "\"otherSteps\": $exists($states.context.Map.Item.Value.selector) ? " + OTHER_STEPS + " : []}"),
    ItemProcessor=O(ProcessorConfig=O(Mode="DISTRIBUTED", ExecutionType="STANDARD"), StartAt="Place", States=place_states),
    MaxConcurrency=j("$floor($number('${TargetConcurrency}'))"),
    ToleratedFailurePercentage=0,
    Label="Places",
    # No Catch: a place that failed fails this execution here, and a redrive redrives it.
    Assign=O(placeResults=j("$states.result")),
    Next="PlacesRan",
)
plan_states["PlacesRan"] = O(
    Type="Choice",
    Comment="The run's first launch was refused before any job existed (its only place): the run ends on it; else the step is summed up across its places.",
    Choices=[O(Condition=j("$count($placeResults[$exists(refused)]) > 0"), Next="StepRefused")],
    Default="SumStep",
)
plan_states["SumStep"] = O(
    Type="Task",
    Comment="The function sums the step up across its places (src/plan/sum.rs, action stepSum): the counts added up, the verdict across all of them (a critical instance failed anywhere; maxFailed over all), what stopped any place, each place's part. A decision only: retried like one; one that still fails fails the execution here, and a redrive asks again.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=O(action="stepSum", runId=j("$runId"), step=j("$step.name"), maxFailed=j("$step.maxFailed"), groups=j("[$placeResults]"))),
    Retry=retry(6),
    Assign=O(stepResult=j(P)),
    Output=j(P),
    Next="StepDone",
)
# A step execution's name: the run's (its first execution and run id, hashed: unique to it), the
# step's index and the part (a step handed over to a fresh execution goes on in part 2, 3, ...).
# A start made again (a retry, a redrive) names the same execution: it cannot run twice.
STEP_EXECUTION_NAME = '"drs-" & $substring($hash($origin & " " & $runId, "SHA-256"), 0, 40) & "-s" & $string($stepIndex) & "-g" & $string($place) & "-p" & $string($part)'
STEP_EXECUTION_ARN = '"${StepExecutionArnPrefix}" & ' + STEP_EXECUTION_NAME
PREVIOUS_PART_ARN = STEP_EXECUTION_ARN.replace("$string($part)", "$string($part - 1)")
# Step Functions' own calls (reading or redriving a step execution): retried a few times, quickly.
SFN_RETRY = [O(ErrorEquals=["States.ALL"], IntervalSeconds=2, BackoffRate=2, MaxAttempts=3, JitterStrategy="FULL")]
# The function's errors that stop the plan at a step execution (src/plan/follow.rs).
STEP_ERRORS = ["StepExecutionFailed", "StepStillRunning"]
place_states["Place"] = O(
    Type="Pass",
    Comment="The step in one account and region, as the plan's RunPlaces hands it over: the run, the step's rules and its instances here, its clock, which place it is (its step executions are named after it), whether it is the run's first launch; its first part to run.",
    Assign=O(
        **{name: j(f"$states.input.{name}") for name in ["runId", "origin", "tags", "step", "stepIndex", "stepStartMillis", "place", "firstOfRun", "otherSteps"]},
        part=1, looks=0, polls=0, redriveRefused=None, stepRedrives=j("$states.context.Execution.RedriveCount"), stepOutput=None, stepExecution=None,
    ),
    Next="RunStep",
)
place_states["RunStep"] = O(
    Type="Task",
    Comment="Runs the step (or its next part) as a child execution of the step state machine and waits for it: its output is the step's result (stepResult), a handover to a fresh part (the step execution made its share of calls), or the run's first launch refused (refused). Anything else -- the child failed, timed out or was aborted, or could not be started -- is looked into (CheckStep).",
    Resource="arn:aws:states:::states:startExecution.sync:2",
    # The first part starts the step: the run id, the tags, the step's rules (its ids go in its
    # first launch, once), its index and clock. A later part takes the step over as the part
    # before left it, reading that part's output itself: .sync:2 answers with the child's input
    # and output together, at most 256 KiB, and a handover passed in would count twice.
    Arguments=O(StateMachineArn="${StepStateMachineArn}", Name=j(STEP_EXECUTION_NAME), Input=j(
        "$merge([$part = 1 ? {\"start\": {\"runId\": $runId, \"tags\": $tags, \"step\": $sift($step, function($v, $k) { $k in [\"name\", \"critical\", \"maxFailed\", \"waitForReadySeconds\"] }), \"stepIndex\": $stepIndex, \"stepStartMillis\": $stepStartMillis, \"target\": $step.target ? $step.target : null, \"firstOfRun\": $firstOfRun, \"launch\": " + FIRST_LAUNCH + "}} : {\"continueFrom\": " + PREVIOUS_PART_ARN + "}, "
        # Links the step execution to this one in the console (the name Step Functions reads).
        "{\"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID\": $states.context.Execution.Id}])")),
    Catch=[O(ErrorEquals=["States.ALL"], Next="CheckStep")],
    Assign=O(stepOutput=j("$states.result.Output")),
    Next="StepRan",
)
# What the last event of a step execution's history says of it: how it ended, or that it runs.
LAST_EVENT = "$states.result.Events[0]"
ENDINGS = '{"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionAborted": "ABORTED", "ExecutionTimedOut": "TIMED_OUT"}'
# The execution data of a step execution's newest event are left out when it is read to know how
# it stands: a running one's newest event may hold a whole call's answer (up to 256 KiB, more as
# an escaped string) -- past what a task result may hold, a failure no Catch takes. Its output is
# read apart, once it is known to have ended well.
READ_STEP = O(Resource="arn:aws:states:::aws-sdk:sfn:getExecutionHistory", Retry=SFN_RETRY)
place_states["CheckStep"] = O(
    Type="Task",
    Comment="Reads the step execution as it is now: the newest event of its history (GetExecutionHistory, newest first, one event, no execution data). An execution's end is its newest event: succeeded, failed, aborted or timed out (with the error and cause); any other event means it runs. One that cannot be read (never started, or Step Functions not answering) has no status. When it was read is kept (readAt, this execution's redrive count), so that what was read before a redrive is read again. The function then says what comes next (StepGate).",
    **READ_STEP,
    Arguments=O(ExecutionArn=j(STEP_EXECUTION_ARN), ReverseOrder=True, MaxResults=1, IncludeExecutionData=False),
    Catch=[O(ErrorEquals=["States.ALL"], Assign=O(stepExecution=j("{\"name\": " + STEP_EXECUTION_NAME + ", \"status\": null, \"error\": $states.errorOutput.Error, \"cause\": $states.errorOutput.Cause, \"readAt\": $states.context.Execution.RedriveCount}")), Next="StepGate")],
    Assign=O(stepExecution=j(
        f"($e := {LAST_EVENT}; $d := $e.ExecutionFailedEventDetails ? $e.ExecutionFailedEventDetails : ($e.ExecutionAbortedEventDetails ? $e.ExecutionAbortedEventDetails : $e.ExecutionTimedOutEventDetails); "
        "{\"name\": " + STEP_EXECUTION_NAME + f", \"status\": $lookup({ENDINGS}, $e.Type) ? $lookup({ENDINGS}, $e.Type) : \"RUNNING\", \"error\": $d.Error, \"cause\": $d.Cause, \"readAt\": $states.context.Execution.RedriveCount}})")),
    Next="StepGate",
)
# Redriven since the step execution was last looked into: the operator asks for the step to go on.
REDRIVEN = "$states.context.Execution.RedriveCount > $stepRedrives"
# What was read of it was read before this execution was last redriven.
STALE = "$stepExecution.readAt < $states.context.Execution.RedriveCount"
LOOK = f"{P}.next.action = \"look\""
place_states["StepGate"] = O(
    Type="Task",
    Comment="The function says what comes of a step execution that did not answer (src/plan/follow.rs): read before this execution was last redriven -- read it again (look); ended well -- take its output (adopt); running -- look again after a while (wait); never started -- start it, a few times, after a while; failed, timed out or aborted -- fail this execution here, naming it (StepExecutionFailed), unless this execution was redriven since (redriven): then redrive the step execution where it failed (or start it). A step execution running for too long fails this execution too (StepStillRunning). No Catch: a redrive of this execution comes back here, and goes on. A redrive is spent (stepRedrives) by any answer but look.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=O(
        action="stepExecution", runId=j("$runId"), step=j("$step.name"),
        execution=j("$sift($stepExecution, function($v, $k) { $k != \"readAt\" })"),
        redriven=j(REDRIVEN), stale=j(STALE), polls=j("$looks"), attemptPolls=j("$polls"), redriveRefused=j("$redriveRefused"))),
    Retry=retry(6, final=STEP_ERRORS),
    Assign=O(
        # An answer this definition does not know fails the state here (the expression gives
        # nothing), so that a redrive asks the function again rather than follow it.
        next=j(f"{P}.next.action in [\"adopt\", \"redrive\", \"start\", \"wait\", \"look\"] ? {P}.next"),
        polls=j(f"{LOOK} ? $polls : ({REDRIVEN} ? 0 : $polls)"),
        looks=j(f"{LOOK} ? $looks : ({REDRIVEN} ? 0 : $looks)"),
        stepRedrives=j(f"{LOOK} ? $stepRedrives : $states.context.Execution.RedriveCount"),
    ),
    Next="FollowStep",
)
place_states["FollowStep"] = O(
    Type="Choice",
    Comment="What the function answered for the step execution. An answer this definition does not know fails the execution here (States.NoChoiceMatched).",
    Choices=[
        O(Condition=j("$next.action = \"adopt\""), Next="ReadStepOutput"),
        O(Condition=j("$next.action = \"redrive\""), Next="RedriveStep"),
        O(Condition=j("$next.action = \"start\""), Next="WaitToStart"),
        O(Condition=j("$next.action = \"wait\""), Next="WaitForStep"),
        O(Condition=j("$next.action = \"look\""), Next="CheckStep"),
    ],
)
place_states["WaitForStep"] = O(
    Type="Wait",
    Comment="The step execution is running (redriven, by hand or from here): look again after the time the function said.",
    Seconds=j("$next.waitSeconds"),
    Assign=O(polls=j("$polls + 1"), looks=j("$looks + 1")),
    Next="CheckStep",
)
place_states["WaitToStart"] = O(
    Type="Wait",
    Comment="The step execution never started (a start refused for now: throttled, too many running executions): start it after the time the function said (0 after a redrive).",
    Seconds=j("$next.waitSeconds"),
    Assign=O(polls=j("$polls + 1"), looks=j("$looks + 1")),
    Next="RunStep",
)
place_states["RedriveStep"] = O(
    Type="Task",
    Comment="Redrives the failed, timed-out or aborted step execution (RedriveExecution): it goes on at its failed call, with the step as it stood; nothing it did is done again. One that cannot be redriven is looked into all the same, with why (redriveRefused): running again or ended well (redriven by hand) it is followed; still failed (past the 14 days a failed execution can be redriven, or its limits), the function stops the plan saying to start the run again.",
    Resource="arn:aws:states:::aws-sdk:sfn:redriveExecution",
    Arguments=O(ExecutionArn=j(STEP_EXECUTION_ARN)),
    Retry=SFN_RETRY,
    Catch=[O(ErrorEquals=["States.ALL"], Assign=O(redriveRefused=j("{\"error\": $states.errorOutput.Error, \"cause\": $states.errorOutput.Cause}")), Next="CheckStep")],
    Assign=O(redriveRefused=None),
    Next="CheckStep",
)
place_states["ReadStepOutput"] = O(
    Type="Task",
    Comment="A step execution that ended well after all (redriven): its output, from the newest event of its history (ExecutionSucceeded), as RunStep would have had it. Fails this execution here if it cannot be read; a redrive reads it again.",
    **READ_STEP,
    Arguments=O(ExecutionArn=j(STEP_EXECUTION_ARN), ReverseOrder=True, MaxResults=1, IncludeExecutionData=True),
    Assign=O(stepOutput=j(f"$parse({LAST_EVENT}.ExecutionSucceededEventDetails.Output)")),
    Next="StepRan",
)
place_states["StepRan"] = O(
    Type="Choice",
    Comment="The step execution handed the step over (next part), or the run's first launch was refused; else the step is summed up.",
    Choices=[
        O(Condition=j("$exists($stepOutput.handover)"), Next="NextPart"),
        O(Condition=j("$exists($stepOutput.refused)"), Next="PlaceRefused"),
    ],
    Default="StepSummed",
)
place_states["PlaceRefused"] = O(
    Type="Succeed",
    Comment="The run's first launch was refused before any job existed: the plan ends the run on it.",
    Output=O(refused=j("$stepOutput.refused")),
)
plan_states["StepRefused"] = O(
    Type="Pass",
    Comment="The run's first launch was refused before any job existed: the run ends with the function's error (nothing was launched).",
    Output=j("$placeResults[$exists(refused)][0].refused"),
    Next="Refusal",
)
plan_states["Refusal"] = O(
    Type="Choice",
    Comment="A refused request, or DRS not usable here.",
    Choices=[O(Condition=j("$states.input.Error = \"InvalidFailbackRequest\""), Next="RequestRefused")],
    Default="DrsNotUsable",
)
place_states["NextPart"] = O(
    Type="Pass",
    Comment="The step goes on in a fresh step execution (its next part), from where the last one left it.",
    Assign=O(part=j("$part + 1"), looks=0, redriveRefused=None, stepRedrives=j("$states.context.Execution.RedriveCount")),
    Next="RunStep",
)
# The error that stopped a place, its cause cut to this many characters: a step's places' outputs
# together (at most MAX_TARGETS_PER_STEP) stay far within the 256 KiB of the Map's output whatever
# a failed call's cause held (Step Functions keeps up to 32 768 characters of one).
PLACE_CAUSE_MAX = 2048
place_states["StepSummed"] = O(
    Type="Succeed",
    Comment=f"The place's summary of the step, as its last call made it, with where it is (for the step's sum); the cause of an error that stopped it cut to {PLACE_CAUSE_MAX} characters.",
    Output=j("($r := $stepOutput.stepResult; {\"stepResult\": $merge([$r, $step.target ? {\"target\": $step.target} : {}, "
             f"$type($r.error.Cause) = \"string\" ? {{\"error\": $merge([$r.error, {{\"Cause\": $substring($r.error.Cause, 0, {PLACE_CAUSE_MAX})}}])}} : {{}}])}})"),
)
# The deferred recovery instances are, most often, exactly the ids of the deferred groups, in the
# same order: then they are handed over once (as the groups), not twice -- a step execution's
# output and its input share the 256 KiB of the plan's RunStep result.
DEFERRED_AS_GROUPS = '"as deferredGroups"'
HANDED_OVER = {
    "deferredRecoveryInstanceIDs": f"$string($deferredRecoveryInstanceIDs) = $string([$deferredGroups.recoveryInstanceIDs]) ? {DEFERRED_AS_GROUPS} : $deferredRecoveryInstanceIDs",
}
TAKEN_OVER = {
    # A step handed over by an execution of a definition from before jobSeconds: none learnt.
    "jobSeconds": "($j := $states.input.handover.jobSeconds; $exists($j) ? $j : null)",
    "deferredRecoveryInstanceIDs": f"($h := $states.input.handover; $h.deferredRecoveryInstanceIDs = {DEFERRED_AS_GROUPS} ? [$h.deferredGroups.recoveryInstanceIDs] : $h.deferredRecoveryInstanceIDs)",
}
step_states["Begin"] = O(
    Type="Choice",
    Comment="A step handed over by the step execution before (input: continueFrom, that execution) goes on where it stood; else the step starts (input: start).",
    Choices=[O(Condition=j("$exists($states.input.continueFrom)"), Next="ReadHandover")],
    Default="Start",
)
step_states["ReadHandover"] = O(
    Type="Task",
    Comment="Reads the step as the step execution before left it: its output (handover), the newest event of its history. If it cannot be read this execution fails here, and a redrive reads it again.",
    Resource="arn:aws:states:::aws-sdk:sfn:getExecutionHistory",
    Arguments=O(ExecutionArn=j("$states.input.continueFrom"), ReverseOrder=True, MaxResults=1, IncludeExecutionData=True),
    Retry=SFN_RETRY,
    Output=j("$parse($states.result.Events[0].ExecutionSucceededEventDetails.Output)"),
    Next="Resume",
)
step_states["Start"] = O(
    Type="Pass",
    Comment="The step as the plan starts it: the run id, tags, the step and its index, its clock (from the plan's StartStep), its loop zeroed; the deploy-time settings read. Its first launch is the input's.",
    Assign=O(
        STEP_SETTINGS,
        **{name: j(f"$states.input.start.{name}") for name in ["runId", "tags", "step", "stepIndex", "stepStartMillis", "target", "firstOfRun"]},
        roundsDone=0, trackingCalls=0, launched=0, skipped=0, rejected=0,
        jobIDs=[], runningJobIDs=[], reportedJobIDs=[], notLaunched=[], deferredGroups=[],
        deferredRecoveryInstanceIDs=[], deferredSourceServerIDs=[], held=[], launchError=None, failedLaunch=None, next=None,
        trackingErrors=0, trackingError=None, calls=0, waiting=None, jobSeconds=None,
    ),
    Output=j("$states.input.start.launch"),
    Next="Launch",
)
step_states["Resume"] = O(
    Type="Pass",
    Comment="Takes the step over as the step execution before left it (its loop as it stood), with the deploy-time settings read again and this execution's calls counted from 0; a tracking call then says what comes next.",
    Assign=O(STEP_SETTINGS, **{name: j(TAKEN_OVER.get(name, f"$states.input.handover.{name}")) for name in CARRIED}, calls=0, next=None),
    Next="Track",
)
step_states["Launch"] = O(
    Type="Task",
    Comment="One launch round of the step, with where the step's loop stands (loop): the function launches what fits before its deadline and within the DRS quotas, defers the rest, and answers what comes next (next). Launched, skipped and rejected outcomes are final and tallied; the new jobs join the ones to track; skipped and rejected groups are kept for the step's last answer; the deferred ones are what the next round sends. A function error in the run's first step before any job exists ends the run; otherwise it stops the step's launching, and a tracking call at once says what comes next (the jobs already started are tracked to the end; the step then halts the plan, LAUNCH_ERROR).",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=j(f"$merge([$states.input, {{\"loop\": {LOOP}}}])")),
    # DrsReadFailed: a step's tag selector could not be read (nothing was launched); read again.
    Retry=retry(3, [O(ErrorEquals=["DrsReadFailed"], IntervalSeconds=30, BackoffRate=2, MaxAttempts=3, JitterStrategy="FULL")]),
    Catch=[O(ErrorEquals=["States.ALL"], Assign=O(launchError=j("$states.errorOutput"), failedLaunch=j("$states.input"), calls=j("$calls + 1")), Output=j("$states.errorOutput"), Next="LaunchFailed")],
    Assign=O(
        calls=j("$calls + 1"),
        roundsDone=j("$roundsDone + 1"),
        launched=j(f"$launched + {P}.counts.launched"),
        skipped=j(f"$skipped + {P}.counts.skipped"),
        rejected=j(f"$rejected + {P}.counts.rejected"),
        jobIDs=j(f"$distinct($append($jobIDs, [{P}.jobs.jobID]))"),
        runningJobIDs=j(f"$distinct($append($runningJobIDs, [{P}.jobs.jobID]))"),
        notLaunched=j(f"$append($notLaunched, [{P}.notLaunched[outcome != \"deferred\"]])"),
        deferredGroups=j(f"[{P}.notLaunched[outcome = \"deferred\"]]"),
        deferredRecoveryInstanceIDs=j(f"[{P}.deferredRecoveryInstanceIDs]"),
        deferredSourceServerIDs=j(f"[{P}.deferredSourceServerIDs]"),
        held=j(f"$append($held, [{P}.heldByOtherSteps])"),
        # Absent when nothing waits: a JSONata expression that returns nothing fails the state.
        waiting=j(f"$exists({P}.waiting) ? {P}.waiting : null"),
        next=j(f"{P}.next"),
    ),
    Output=j(P),
    Next="FollowNext",
)
step_states["LaunchFailed"] = O(
    Type="Choice",
    Comment="A launch round failed for good: there is no answer to follow. In the run's first step before any job exists, a refusal ends the step with the function's error, and the plan ends the run on it (nothing was launched), and any other failure sends the launch once more (LaunchAgain), which fails the execution if it fails too. Otherwise a tracking call, at once, with launchError in its loop: the function answers what comes next (the step launches no more; its jobs are tracked to the end, its last call sums it up, and it halts the plan, LAUNCH_ERROR).",
    Choices=[
        O(Condition=j("$firstOfRun and $count($jobIDs) = 0 and $states.input.Error in [\"InvalidFailbackRequest\", \"DrsAccountNotInitialized\", \"DrsAccessDenied\", \"TargetUnreachable\"]"), Next="Refused"),
        O(Condition=j("$firstOfRun and $count($jobIDs) = 0"), Next="LaunchAgain"),
    ],
    Default="Track",
)
# The first launch of a run that failed for good, whatever the reason, before any job existed: sent
# once more, with its retries, and with no Catch -- if it fails again the execution fails at this
# call, and RedriveExecution sends it again (the same runId finds whatever the failed attempts
# did). On success the step goes on as after any launch round.
step_states["LaunchAgain"] = O(
    step_states["Launch"],
    Comment="A launch round sent once more after it failed for good: the run's first before any job existed (not a refusal), or any later one once the step's jobs are tracked to the end (the function said retryLaunch). No Catch: if it fails again, the execution fails here, and a redrive sends it again with the same runId (nothing launched twice: pre-flight finds what a failed attempt did).",
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=j(f"$merge([$failedLaunch, {{\"loop\": {LOOP}}}])")),
    Assign=O(step_states["Launch"]["Assign"], launchError=None),
)
del step_states["LaunchAgain"]["Catch"]
step_states["FollowNext"] = O(
    Type="Choice",
    Comment="What the function answered comes next: the step's last call; a handover to a fresh execution; the launch round that failed for good, sent once more now that the step's jobs are done (LaunchAgain); or a wait (next.waitSeconds, 0 for none) before the next launch round or tracking call.",
    Choices=[
        O(Condition=j("$next.action = \"finish\""), Next="FinalTrack"),
        O(Condition=j("$next.action = \"handover\""), Next="HandOver"),
        O(Condition=j("$next.action = \"retryLaunch\""), Next="LaunchAgain"),
    ],
    Default="WaitForNext",
)
step_states["HandOver"] = O(
    Type="Succeed",
    Comment="This step execution has made its share of calls (the function said handover): it ends with the step as it stands, and the plan starts a fresh step execution that takes it over (its next part), so that no execution nears Step Functions' cap of 25 000 history events whatever the plan and the settings.",
    Output=O(handover=O((name, j(HANDED_OVER.get(name, f"${name}"))) for name in CARRIED)),
)
step_states["Refused"] = O(
    Type="Succeed",
    Comment="The run's first launch was refused (a malformed request, DRS not usable here) before any job existed: the plan ends the run with this error.",
    Output=O(refused=j("$states.input")),
)
step_states["WaitForNext"] = O(
    Type="Wait",
    Comment="Jobs take minutes, and deferred instances wait for quota or for throttling to ease: the function says how long (TrackIntervalSeconds, or 0 when capacity may have freed up just now).",
    Seconds=j("$next.waitSeconds"),
    Next="NextCall",
)
step_states["NextCall"] = O(
    Type="Choice",
    Comment="The call the function answered: launch the deferred instances again, or track the running jobs.",
    Choices=[O(Condition=j("$next.action = \"launch\""), Next="Relaunch")],
    Default="Track",
)
step_states["WaitToTrack"] = O(
    Type="Wait",
    Comment="A tracking call failed: ask again after TrackIntervalSeconds.",
    Seconds=j("$trackIntervalSeconds"),
    Next="Track",
)
step_states["Track"] = O(
    Type="Task",
    Comment="Asks after the step's jobs not done yet (or done but not yet announced), passing back the jobs already announced so each job's Failback Launch Job Completed event (which names the step) is published once, with where the step's loop stands: the function answers what comes next (launch the deferred instances again when a job finished and quota may have freed up, track again, or sum the step up). Tracking is read-only apart from its events, so Lambda service errors are retried more; a call that still fails is tried again at the next interval (TrackFailed).",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=j("$merge([{\"action\": \"track\", \"runId\": $runId, \"step\": $step.name, \"jobIDs\": $runningJobIDs, \"reportedJobIDs\": $reportedJobIDs, \"loop\": " + LOOP + "}, " + TARGET + "])")),
    Retry=retry(6),
    Catch=[O(ErrorEquals=["States.ALL"], Assign=O(trackingErrors=j("$trackingErrors + 1"), trackingError=j("$states.errorOutput"), calls=j("$calls + 1")), Output=j("$states.errorOutput"), Next="TrackFailed")],
    Assign=O(
        calls=j("$calls + 1"),
        trackingCalls=j("$trackingCalls + 1"),
        trackingErrors=0,
        runningJobIDs=j(f"[{P}.runningJobIDs]"),
        reportedJobIDs=j(f"[{P}.reportedJobIDs]"),
        # The shortest job so far, for the next call's timing (src/track/expect.rs).
        jobSeconds=j(f"$exists({P}.jobSeconds) ? {P}.jobSeconds : $jobSeconds"),
        next=j(f"{P}.next"),
    ),
    Output=O(runId=j("$runId"), step=j("$step.name"), counts=j(f"{P}.counts"), runningJobs=j(f"$count([{P}.runningJobIDs])")),
    Next="FollowNext",
)
step_states["TrackAgain"] = O(
    step_states["Track"],
    Comment="A tracking call that failed several times in a row, made once more with no Catch: if it fails again the execution fails here, and RedriveExecution makes it again with the step as it stood (its jobs are tracked on, nothing launched or announced twice). On success the step goes on as after any tracking call.",
)
del step_states["TrackAgain"]["Catch"]
step_states["TrackFailed"] = O(
    Type="Choice",
    Comment=f"A tracking call failed after its retries: there is no answer to follow. Try again at the next interval, up to {MAX_TRACKING_ERRORS} failures in a row; then once more at once, with no Catch (TrackAgain): if that fails too the execution fails there, and a redrive asks again.",
    Choices=[O(Condition=j(f"$trackingErrors < {MAX_TRACKING_ERRORS}"), Next="WaitToTrack")],
    Default="TrackAgain",
)
step_states["Relaunch"] = O(
    Type="Pass",
    Comment="The step's next round: the deferred recovery instances and source servers, each as they came (a list only when it has ids; a selector is not sent again, it was resolved by the first round), with the same runId, the step's name and the original tags (only when there were some), the step's waitForReadySeconds and the instances the last round announced waiting, by state.",
    Output=j("$merge([$count($deferredRecoveryInstanceIDs) > 0 ? {\"recoveryInstanceIDs\": $deferredRecoveryInstanceIDs} : {}, $count($deferredSourceServerIDs) > 0 ? {\"sourceServerIDs\": $deferredSourceServerIDs} : {}, {\"runId\": $runId, \"step\": $step.name}, " + TARGET + ", $tags ? {\"tags\": $tags} : {}, " + WAIT_FOR_READY + ", " + ANNOUNCED + "])"),
    Next="Launch",
)
# The step's summary: how it ended is the function's word on its last call (stepEnd: status
# finished or halted, the reason, what stopped it early, complete); the counts add the step's own
# tallies; the error is the one that stopped it, when one did.
END = f"{P}.stepEnd"
STEP_RESULT = (
    "{\"name\": $step.name, "
    f"\"status\": {END}.status, "
    f"\"reason\": {END}.reason, "
    f"\"stoppedBy\": {END}.stoppedBy, "
    f"\"complete\": {END}.complete, "
    f"\"counts\": $merge([{P}.finished, {{\"launched\": $launched, \"skipped\": $skipped, \"rejected\": $rejected, \"deferred\": {DEFERRED_COUNT}}}]), "
    "\"rounds\": $roundsDone, "
    "\"trackingCalls\": $trackingCalls + 1, "
    f"\"verdict\": {P}.verdict, "
    f"\"error\": {END}.stoppedBy = \"LAUNCH_ERROR\" ? $launchError : ({END}.stoppedBy = \"TRACKING_ERROR\" ? $trackingError)}}"
)
step_states["FinalTrack"] = O(
    Type="Task",
    Comment="The step's last call: every job of the step read again, with the instances never launched (skipped, rejected, and the ones still deferred), so it accounts for every instance of the step; it publishes Failback Step Finished and answers the step's verdict (critical instances, maxFailed, instances unfinished) and, from the loop it is sent, how the step ended (stepEnd). The output is the step's summary (stepResult): status finished or halted and the reason, what stopped it early (stoppedBy: TIME_LIMIT, MAX_ROUNDS, LAUNCH_ERROR or TRACKING_ERROR), counts, rounds, tracking calls, the verdict.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=j(
        "$merge([{\"action\": \"track\", \"runId\": $runId, \"step\": $step.name, \"critical\": $step.critical, \"maxFailed\": $step.maxFailed, "
        "\"jobIDs\": $jobIDs, \"reportedJobIDs\": $reportedJobIDs, \"final\": true, \"notLaunched\": $append($notLaunched, $deferredGroups), \"heldByOtherSteps\": $held, \"loop\": " + LOOP + "}, " + TARGET + "])")),
    Retry=retry(6, [DRS_READ_FAILED]),
    # No Catch: a last call that still fails after its retries (DRS unreadable for minutes) fails
    # the execution here, and RedriveExecution makes it again, with the step as it stood.
    Output=j("{\"stepResult\": " + STEP_RESULT + "}"),
    Next="StepEnded",
)
step_states["StepEnded"] = O(
    Type="Succeed",
    Comment="The step's summary (stepResult), for the plan.",
)
plan_states["StepDone"] = O(
    Type="Choice",
    Comment="A halted step halts the plan; a step with finish is finished first (its instances that came back, after an approval); then the plan goes on.",
    Choices=[
        O(Condition=j("$stepResult.status = \"halted\""), Next="HaltPlan"),
        O(Condition=j("$exists($step.finish)"), Next="StartStepFinish"),
    ],
    Default="AfterStep",
)
plan_states["StartStepFinish"] = O(
    Type="Pass",
    Comment="The step's finishing: its instances only (step), its action; afterwards the plan goes on.",
    Assign=O(finishScope=j("$step.name"), finishAfter="step", finishing=j("$step.finish")),
    Next="FinishPlanned",
)
plan_states["AfterStep"] = O(
    Type="Choice",
    Comment="After the last step the run is summed up; otherwise wait waitAfterSeconds (when not 0), ask for approval (when the step asks for it), and start the next step.",
    Choices=[
        O(Condition=j("$stepIndex + 1 >= $count($steps)"), Next="SumUp"),
        O(Condition=j("$step.waitAfterSeconds > 0"), Next="WaitAfterStep"),
        O(Condition=j("$step.approval = true"), Next="AskApproval"),
    ],
    Default="StartStep",
)
plan_states["WaitAfterStep"] = O(
    Type="Wait",
    Comment="The step's waitAfterSeconds, before the next step (or its approval).",
    Seconds=j("$step.waitAfterSeconds"),
    Next="AfterWait",
)
plan_states["AfterWait"] = O(
    Type="Choice",
    Comment="Ask for approval when the step asks for it; else start the next step.",
    Choices=[O(Condition=j("$step.approval = true"), Next="AskApproval")],
    Default="StartStep",
)
# What the approver answered (SendTaskSuccess's output: e.g. {"approvedBy": the caller's ARN, as the
# documented command reads it from STS}), kept with the step or the finishing it let go; past 4 096
# characters only its length. Self-reported: CloudTrail's SendTaskSuccess event names the caller
# as AWS authenticated it.
APPROVAL_RECORD = "($o := $states.result; $length($string($o)) <= 4096 ? $o : {\"truncated\": true, \"length\": $length($string($o))})"
APPROVAL_HALT = lambda reason, error="$states.errorOutput": j(f"$merge([$stepResult, {{\"status\": \"halted\", \"reason\": \"{reason}\", \"error\": {error}}}])")
# An approval still unanswered after ApprovalPendingAlarmSeconds is asked again -- the request
# published anew with a new token, `reminder` counting (the earlier token can no longer be
# answered: TaskTimedOut) -- and counted (ApprovalsOverdue, which the approval-pending alarm
# watches): every ApprovalPendingAlarmSeconds until it is answered or ApprovalTimeoutSeconds, from
# the first request, have passed. At most MAX_APPROVAL_REMINDERS in a run, so its history stays
# bounded (tests/history.rs reads the number here); past them an approval waits out its time
# without reminders.
MAX_APPROVAL_REMINDERS = 48
APPROVAL_SINCE = O(approvalSinceMillis=j("$toMillis($states.context.State.EnteredTime)"))
APPROVAL_DEADLINE = "$approvalSinceMillis + $approvalTimeoutSeconds * 1000"
APPROVAL_LEFT = f"$ceil(({APPROVAL_DEADLINE} - $toMillis($states.context.State.EnteredTime)) / 1000)"
APPROVAL_WAIT = j(f"$max([1, $approvalReminders < {MAX_APPROVAL_REMINDERS} ? $min([$approvalPendingAlarmSeconds, {APPROVAL_LEFT}]) : {APPROVAL_LEFT}])")
APPROVAL_REMINDER = "\"reminder\": $approvalReminders, \"pendingSince\": $fromMillis($approvalSinceMillis), \"answerBy\": $fromMillis(" + APPROVAL_DEADLINE + ")"

def approval_reminders(prefix, task, timed_out):
    """The states around an approval task `task`: its first request (the clock starts), and what
    follows a wait that ran out -- a reminder, or the approval timed out (`timed_out`: that state)."""
    plan_states[f"Ask{prefix}Approval"] = O(
        Type="Pass",
        Comment="The approval's clock starts: ApprovalTimeoutSeconds from here, reminders every ApprovalPendingAlarmSeconds.",
        Assign=APPROVAL_SINCE,
        Next=task,
    )
    plan_states[f"{prefix}ApprovalWaited"] = O(
        Type="Choice",
        Comment="The wait ran out: before ApprovalTimeoutSeconds it was a reminder's (the approval is overdue); else the approval timed out.",
        Choices=[O(Condition=j(f"$toMillis($states.context.State.EnteredTime) < {APPROVAL_DEADLINE}"), Assign=O(approvalReminders=j("$approvalReminders + 1")), Next=f"{prefix}ApprovalOverdue")],
        Default=timed_out,
    )
    plan_states[f"{prefix}ApprovalOverdue"] = metric("No answer after ApprovalPendingAlarmSeconds: counted (ApprovalsOverdue) for the approval-pending alarm, and asked again.", "ApprovalsOverdue", 1, task)
plan_states["RequestApproval"] = O(
    Type="Task",
    Comment="Publishes Failback Step Approval Requested with this task's token and waits: SendTaskSuccess with the token starts the next step; SendTaskFailure (any other error) halts the plan (APPROVAL_REFUSED, the error and cause kept), and so does no answer within ApprovalTimeoutSeconds of the first request (APPROVAL_TIMED_OUT); unanswered after ApprovalPendingAlarmSeconds, it is counted for the approval-pending alarm and published again with a new token (reminder 1, 2, ...). A failed PutEvents call (an EventBridge error or a failed entry) is tried again, 3 times with backoff, each attempt with a new token (an earlier one, if its event was delivered after all, can no longer be answered); if it still fails, nobody was asked and the plan halts APPROVAL_NOT_REQUESTED (the error kept).",
    Resource="arn:aws:states:::events:putEvents.waitForTaskToken",
    # What the token is for, so an approver sees what they approve: the run, the step that ended
    # and how, and the step it lets start with its instances in each place.
    Arguments=O(Entries=[event("Failback Step Approval Requested", "{\"runId\": $runId, " + APPROVAL_REMINDER + ", \"step\": $step.name, \"nextStep\": $steps[$stepIndex + 1].name, \"approving\": \"start step \" & $steps[$stepIndex + 1].name, \"taskToken\": $states.context.Task.Token, \"counts\": $stepResult.counts, \"nextStepInstances\": $steps[$stepIndex + 1].instances, \"nextStepPlaces\": [$steps[$stepIndex + 1].groups.$sift($, function($v, $k) { $k in [\"target\", \"recoveryInstanceIDs\", \"sourceServerIDs\", \"selector\"] })]}")]),
    TimeoutSeconds=APPROVAL_WAIT,
    Retry=[O(ErrorEquals=APPROVAL_PUBLISH_ERRORS, IntervalSeconds=2, BackoffRate=2, MaxAttempts=3, JitterStrategy="FULL")],
    Catch=[
        O(ErrorEquals=APPROVAL_PUBLISH_ERRORS, Assign=O(stepResult=APPROVAL_HALT("APPROVAL_NOT_REQUESTED")), Output=j("$states.errorOutput"), Next="ApprovalNotPublished"),
        O(ErrorEquals=["States.Timeout"], Output=j("$states.errorOutput"), Next="ApprovalWaited"),
        O(ErrorEquals=["States.ALL"], Assign=O(stepResult=APPROVAL_HALT("APPROVAL_REFUSED")), Output=j("$states.errorOutput"), Next="HaltPlan"),
    ],
    Assign=O(stepResult=j("$merge([$stepResult, {\"approval\": " + APPROVAL_RECORD + "}])")),
    Next="StartStep",
)
approval_reminders("", "RequestApproval", "ApprovalTimedOut")
plan_states["ApprovalTimedOut"] = O(
    Type="Pass",
    Comment="No answer within ApprovalTimeoutSeconds: the plan halts (APPROVAL_TIMED_OUT, the wait's error kept).",
    Assign=O(stepResult=APPROVAL_HALT("APPROVAL_TIMED_OUT", "$states.input")),
    Next="HaltPlan",
)
plan_states["ApprovalNotPublished"] = not_published("Failback Step Approval Requested", "HaltPlan")
plan_states["HaltPlan"] = O(
    Type="Task",
    Comment="Failback Plan Halted: the step it halted at, why (the step's verdict, or the error), and the steps that will not start.",
    Resource="arn:aws:states:::events:putEvents",
    Arguments=O(Entries=[event("Failback Plan Halted", f"{{\"runId\": $runId, \"step\": $stepResult.name, \"reason\": $stepResult.reason, \"verdict\": $stepResult.verdict.halt = true ? $stepResult.verdict, \"error\": $stepResult.error, \"notStarted\": [{LATER_STEPS}.name]}}")]),
    Retry=EVENT_RETRY,
    Catch=[O(ErrorEquals=["States.ALL"], Output=j("$states.input"), Next="PlanHaltedNotPublished")],
    Output=j("$states.input"),
    Next="SumUp",
)
plan_states["PlanHaltedNotPublished"] = not_published("Failback Plan Halted", "SumUp")
SUMMARY = (
    "($halted := $stepResult.status = \"halted\"; "
    f"$list := $append($append($results, [$stepResult]), [{LATER_STEPS}.{{\"name\": name, \"status\": \"not started\", \"reason\": \"PLAN_HALTED\"}}]); "
    "{\"runId\": $runId, "
    "\"complete\": $not($halted) and $count($list[complete != true]) = 0, "
    "\"halted\": $halted ? {\"step\": $stepResult.name, \"reason\": $stepResult.reason} : null, "
    "\"counts\": {"
    + ", ".join(f"\"{k}\": $sum([$list.counts.{k}])" for k in ["succeeded", "failed", "running", "notLaunched", "launched", "skipped", "rejected", "deferred"])
    + "}, \"steps\": $list})"
)
plan_states["SumUp"] = O(
    Type="Pass",
    Comment="The run's summary, the Failback Run Finished event's detail and the execution's output: complete (every step finished with every instance final, no halt), where it halted and why, counts summed over the steps, and each step's status (finished, halted, not started) with its reason, counts, rounds and tracking calls.",
    Output=j(SUMMARY),
    Next="FinishOrPublish",
)
plan_states["FinishOrPublish"] = O(
    Type="Choice",
    Comment="A plan with finish: what the run brought back is listed, approved, then disconnected or terminated before the run is announced; otherwise the run is announced now.",
    Choices=[O(Condition=j("$finish != null"), Next="StartRunFinish")],
    Default="PublishRunFinished",
)
plan_states["StartRunFinish"] = O(
    Type="Pass",
    Comment="The plan's finishing: the whole run's instances, the plan's action; the run's summary kept for after it.",
    Assign=O(finishScope=None, finishAfter="run", finishing=j("$finish"), summary=j("$states.input")),
    Next="FinishPlanned",
)
# A finishing call: the whole run's instances (no step), since the execution started (a redrive
# keeps the start), with the plan's tracking interval between calls.
# A run's finishings share MAX_FINISH_CALLS (finishCalls counts them all): the plan's history stays
# bounded however many steps finish (tests/history.rs).
def finish_call(dry_run, calls, approved=""):
    return j("$merge([{\"action\": \"finish\", \"runId\": $runId, \"finishing\": $finishing, \"dryRun\": " + dry_run + ", \"sinceMillis\": $toMillis($states.context.Execution.StartTime), \"calls\": " + calls + ", \"intervalSeconds\": $trackIntervalSeconds" + approved + "}, $finishScope != null ? {\"step\": $finishScope} : {}])")
# What the operator approved: the list's planned instances, and only those are ever finished.
APPROVED = ", \"recoveryInstanceIDs\": [$finishPlan.groups[result = \"planned\"].recoveryInstanceIDs]"
FINISH_NOT_DONE = lambda status: j("{\"finishing\": $finishing, \"status\": \"" + status + "\", \"error\": $states.errorOutput}")
plan_states["FinishPlanned"] = O(
    Type="Task",
    Comment="Lists what finishing would do (a dry run of the function's finish action: each instance of the run eligible or not, and why; nothing done). No Catch: if it cannot be listed after its retries, the execution fails here (ExecutionEndedRule then has the run's summary published) and a redrive lists again.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=finish_call("true", "$finishCalls")),
    Retry=retry(6, [DRS_READ_FAILED]),
    Assign=O(finishPlan=j(P)),
    Next="AnythingToFinish",
)
plan_states["AnythingToFinish"] = O(
    Type="Choice",
    Comment="Nothing eligible (no instance came back in this run): nothing to approve.",
    Choices=[O(Condition=j("$finishPlan.counts.planned > 0"), Next="AskFinishApproval")],
    Default="NothingToFinish",
)
plan_states["NothingToFinish"] = O(
    Type="Pass",
    Comment="The list, as the run's finishing result: no instance to finish.",
    Assign=O(finishResult=j("{\"finishing\": $finishing, \"status\": \"nothing to finish\", \"counts\": $finishPlan.counts, \"groups\": $finishPlan.groups}")),
    Next="FinishSummed",
)
FINISH_REFUSED = lambda status: O(finishResult=FINISH_NOT_DONE(status))
plan_states["RequestFinishApproval"] = O(
    Type="Task",
    Comment="Publishes Failback Finishing Approval Requested: what will be done (disconnect or terminate, irreversible) to exactly which instances, which are not eligible and why, how the run went; with this task's token, and waits. SendTaskSuccess finishes; SendTaskFailure (any error) or no answer within ApprovalTimeoutSeconds leaves every instance as it is (status refused / timed out); reminded like a step's approval; a publish that keeps failing asks nobody and does nothing (not requested). The failback itself is not affected: the run is announced either way.",
    Resource="arn:aws:states:::events:putEvents.waitForTaskToken",
    Arguments=O(Entries=[event("Failback Finishing Approval Requested", "{\"runId\": $runId, " + APPROVAL_REMINDER + ", \"step\": $finishScope, \"finishing\": $finishing, \"complete\": $finishAfter = \"run\" ? $summary.complete : $stepResult.complete, \"halted\": $finishAfter = \"run\" ? $summary.halted : null, \"counts\": $finishPlan.counts, \"groups\": $finishPlan.groups, \"taskToken\": $states.context.Task.Token}")]),
    TimeoutSeconds=APPROVAL_WAIT,
    Retry=[O(ErrorEquals=APPROVAL_PUBLISH_ERRORS, IntervalSeconds=2, BackoffRate=2, MaxAttempts=3, JitterStrategy="FULL")],
    Catch=[
        O(ErrorEquals=APPROVAL_PUBLISH_ERRORS, Assign=FINISH_REFUSED("not requested"), Next="FinishApprovalNotPublished"),
        O(ErrorEquals=["States.Timeout"], Output=j("$states.errorOutput"), Next="FinishApprovalWaited"),
        O(ErrorEquals=["States.ALL"], Assign=FINISH_REFUSED("refused"), Next="FinishSummed"),
    ],
    Assign=O(finishApproval=j(APPROVAL_RECORD)),
    Next="Finish",
)
approval_reminders("Finish", "RequestFinishApproval", "FinishApprovalTimedOut")
plan_states["FinishApprovalTimedOut"] = O(
    Type="Pass",
    Comment="No answer within ApprovalTimeoutSeconds: every instance is left as it is (timed out, the wait's error kept).",
    Assign=O(finishResult=j("{\"finishing\": $finishing, \"status\": \"timed out\", \"error\": $states.input}")),
    Next="FinishSummed",
)
plan_states["FinishApprovalNotPublished"] = not_published("Failback Finishing Approval Requested", "FinishSummed")
plan_states["Finish"] = O(
    Type="Task",
    Comment="Disconnects or terminates the approved instances (the list's planned ones, and only those; the function decides each again from what DRS shows now) and follows the terminate jobs: asked again after the interval while any runs (next: finish), at most 60 times. Its last call publishes Failback Instances Finished. No Catch: a call that fails for good fails the execution here (ExecutionEndedRule then has the run's summary published), and a redrive asks again, from what DRS did: nothing is done twice.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=finish_call("false", "$finishCalls", APPROVED)),
    Retry=retry(6, [DRS_READ_FAILED]),
    Assign=O(finishCalls=j("$finishCalls + 1"), finishAnswer=j(P)),
    Next="FinishNext",
)
plan_states["FinishNext"] = O(
    Type="Choice",
    Comment="The function's next: ask again after a while (a terminate job runs, or something was deferred), or done.",
    Choices=[O(Condition=j("$finishAnswer.next.action = \"finish\""), Next="WaitToFinish")],
    Default="FinishDone",
)
plan_states["WaitToFinish"] = O(
    Type="Wait",
    Comment="The interval the function said (the plan's TrackIntervalSeconds).",
    Seconds=j("$finishAnswer.next.waitSeconds"),
    Next="Finish",
)
plan_states["FinishDone"] = O(
    Type="Pass",
    Comment="The finishing's result: every instance's, as the last call answered (and published).",
    Assign=O(finishResult=j("{\"finishing\": $finishing, \"status\": \"finished\", \"approval\": $finishApproval, \"complete\": $finishAnswer.complete, \"counts\": $finishAnswer.counts, \"groups\": $finishAnswer.groups, \"jobIDs\": $finishAnswer.jobIDs}")),
    Next="FinishSummed",
)
plan_states["FinishSummed"] = O(
    Type="Choice",
    Comment="A step's finishing goes into the step's result, and the plan goes on; the plan's, into the run's summary.",
    Choices=[O(Condition=j("$finishAfter = \"run\""), Next="RunFinishSummed")],
    Default="StepFinishSummed",
)
plan_states["StepFinishSummed"] = O(
    Type="Pass",
    Comment="The step's result with its finishing (finish: status finished, refused, timed out, not requested or nothing to finish; the counts and groups when there are).",
    Assign=O(stepResult=j("$merge([$stepResult, {\"finish\": $finishResult}])")),
    Next="AfterStep",
)
plan_states["RunFinishSummed"] = O(
    Type="Pass",
    Comment="The run's summary with its finishing (finish: as a step's).",
    Output=j("$merge([$summary, {\"finish\": $finishResult}])"),
    Next="PublishRunFinished",
)
plan_states["PublishRunFinished"] = O(
    Type="Task",
    Comment="Failback Run Finished on the result bus (the function publishes Failback Step Finished per step).",
    Resource="arn:aws:states:::events:putEvents",
    Arguments=O(Entries=[event("Failback Run Finished", "$states.input")]),
    Retry=EVENT_RETRY,
    Catch=[O(ErrorEquals=["States.ALL"], Output=j("$states.input"), Next="CountRunFinishedNotPublished")],
    Output=j("$states.input"),
    Next="Finished",
)
plan_states["CountRunFinishedNotPublished"] = not_published("Failback Run Finished", "RunFinishedNotPublished")
plan_states["RunFinishedNotPublished"] = O(
    Type="Choice",
    Comment="The Failback Run Finished event could not be published, even after its retries. A complete run still succeeds. An incomplete one fails (FailbackIncompleteUnannounced): it would otherwise end in a Succeed state with no event for the runs-incomplete alarm to count, and nothing would say that it is incomplete; as a failed execution the executions-failed alarm catches it.",
    Choices=[O(Condition=j("$states.input.complete = true"), Next="FailbackComplete")],
    Default="FailbackIncompleteUnannounced",
)
plan_states["Finished"] = O(
    Type="Choice",
    Comment="Complete: every step ran and every instance has its final result or outcome.",
    Choices=[O(Condition=j("$states.input.complete"), Next="FailbackComplete")],
    Default="FailbackIncomplete",
)
plan_states["FailbackComplete"] = O(Type="Succeed", Comment="Every step ran and finished: every instance has its final result (succeeded or failed, with the reason) or outcome (skipped, rejected), within each step's limits.")
plan_states["FailbackIncomplete"] = O(Type="Succeed", Comment="The plan halted (halted says at which step and why; later steps are not started) or a step stopped before every instance was final. Starting the plan again with the same runId resumes it: instances already launched by this run are not launched again.")
# The Cause of FailbackIncompleteUnannounced: the run's summary as a JSON string, within the 32768
# characters Step Functions keeps of a cause (ExecutionFailedEventDetails). Taken as characters,
# 32000 leaves a margin; in case the limit is counted in UTF-8 bytes, a summary that could be
# longer than 32000 bytes (every non-ASCII character counted as 4) has its non-ASCII characters
# replaced by "?" first (only error messages can hold any: ids, step names and reasons are ASCII),
# so that its length is its size. A summary still too long is cut, and says so; the whole summary
# stays in the execution history, as the input of the Fail state.
CAUSE_MAX = 32000
CAUSE_CUT = "... (cut at 32000 characters: the whole summary is the input of FailbackIncompleteUnannounced in the execution history)"
UNANNOUNCED_CAUSE = (
    "($s := $string($states.input); "
    f"$s := $length($s) + 3 * $length($replace($s, /[\\x00-\\x7F]+/, \"\")) <= {CAUSE_MAX} ? $s : $replace($s, /[^\\x00-\\x7F]/, \"?\"); "
    f"$length($s) <= {CAUSE_MAX} ? $s : $substring($s, 0, {CAUSE_MAX - len(CAUSE_CUT)}) & \"{CAUSE_CUT}\")"
)
plan_states["FailbackIncompleteUnannounced"] = O(
    Type="Fail",
    Comment="An incomplete run (halted, or a step stopped before every instance was final) whose Failback Run Finished event could not be published: the execution fails, so that the executions-failed alarm fires where the runs-incomplete alarm, which counts those events, cannot. The cause is the run's summary (the event's detail), as JSON; start the plan again with the same runId to resume it, as after FailbackIncomplete.",
    Error="FailbackIncomplete",
    Cause=j(UNANNOUNCED_CAUSE),
)
plan_states["DryRunPlanned"] = O(
    Type="Succeed",
    Comment="A dry run: nothing launched; each step with the instances it resolves to, its counts, planned job sizes and outcomes.",
    Output=O(runId=j("$runId"), dryRun=True, steps=j("[$states.input.steps]")),
)
plan_states["RequestRefused"] = O(Type="Fail", Comment="Malformed or oversized request or plan, or a field DRS refuses: nothing was launched.", Error=j("$states.input.Error"), Cause=j("$states.input.Cause"))
plan_states["DrsNotUsable"] = O(Type="Fail", Comment="DRS is not initialised in this account and region, or the function may not call it; no job was created.", Error=j("$states.input.Error"), Cause=j("$states.input.Cause"))


# ---- The rehearsal: a stored plan dry-run on a schedule --------------------------------------
rehearsal_states = O()
# A rehearsal that could not be made: where it stopped, and the error (a refused plan, DRS or a
# target role not usable, the stored plan unreadable).
NOT_REHEARSED = lambda stage: O(verdict=j("{\"runId\": $runId, \"ready\": false, \"stage\": \"" + stage + "\", \"error\": $states.errorOutput}"))
rehearsal_states["Begin"] = O(
    Type="Pass",
    Comment="The rehearsal's run id (from its start time: a dry run launches nothing, so any id will do; this one says when) and the deploy-time settings a plan check is given.",
    Assign=O(runId=j("\"rehearsal-\" & $replace($substring($states.context.Execution.StartTime, 0, 19), \":\", \"\")"), **PLAN_SETTINGS),
    Next="ReadPlan",
)
rehearsal_states["ReadPlan"] = O(
    Type="Task",
    Comment="The plan the operator stored with the stack (an SSM String parameter, RehearsalPlanParameter), as text: the function reads it. A parameter that cannot be read (deleted, no permission) is a failed rehearsal.",
    Resource="arn:aws:states:::aws-sdk:ssm:getParameter",
    Arguments=O(Name="${RehearsalPlanParameter}"),
    Retry=EVENT_RETRY,
    Catch=[O(ErrorEquals=["States.ALL"], Assign=NOT_REHEARSED("read the stored plan"), Next="PublishRehearsal")],
    Assign=O(planText=j("$states.result.Parameter.Value")),
    Next="Rehearse",
)
rehearsal_states["Rehearse"] = O(
    Type="Task",
    Comment="The function reads the stored plan, checks it as a dry run -- every selector, id and place against DRS as the failback would see them now, nothing launched, nothing announced -- and judges what it found (ready, or each finding: a place unreachable, instances gone or refused, DRS unreadable). A refused plan (a selector that matches nothing after a tag changed, a deleted instance named, a finishing the stack does not allow) or DRS not usable is a failed rehearsal, its error kept. Read-only: retried like the plan's check.",
    Resource="arn:aws:states:::lambda:invoke",
    TimeoutSeconds=TASK_TIMEOUT,
    Arguments=O(FunctionName="${FailbackFunctionArn}", Payload=j(f"{{\"action\": \"rehearsal\", \"runId\": $runId, \"plan\": $planText, \"limits\": {PLAN_LIMITS}}}")),
    Retry=retry(6, [DRS_READ_FAILED]),
    Catch=[O(ErrorEquals=["States.ALL"], Assign=NOT_REHEARSED("dry run"), Next="PublishRehearsal")],
    Assign=O(verdict=j(P)),
    Next="PublishRehearsal",
)
rehearsal_states["PublishRehearsal"] = O(
    Type="Task",
    Comment="Failback Rehearsal Finished on the result bus: ready, or what would stop a failback now.",
    Resource="arn:aws:states:::events:putEvents",
    Arguments=O(Entries=[event("Failback Rehearsal Finished", "$merge([$verdict, {\"parameter\": \"${RehearsalPlanParameter}\"}])")]),
    Retry=EVENT_RETRY,
    Catch=[O(ErrorEquals=["States.ALL"], Next="RehearsalNotPublished")],
    Next="RecordRehearsal",
)
rehearsal_states["RehearsalNotPublished"] = not_published("Failback Rehearsal Finished", "RecordRehearsal")
rehearsal_states["RecordRehearsal"] = O(
    metric("", "RehearsalsFailed", j("$verdict.ready = true ? 0 : 1"), "Verdict"),
    Comment="RehearsalsFailed: 1 when the rehearsal found something or could not be made, 0 when ready -- what the rehearsal alarm watches. No Catch: a metric that cannot be written fails the execution, which the same alarm watches.",
    Retry=EVENT_RETRY,
)
del rehearsal_states["RecordRehearsal"]["Catch"]
rehearsal_states["Verdict"] = O(
    Type="Choice",
    Comment="Ready: the execution succeeds with the verdict; otherwise it fails, the verdict as the cause.",
    Choices=[O(Condition=j("$verdict.ready = true"), Next="Ready")],
    Default="NotReady",
)
rehearsal_states["Ready"] = O(Type="Succeed", Comment="Nothing found: a failback of the stored plan would start now.", Output=j("$verdict"))
# A Fail state's cause is at most 32 768 characters: the verdict (at most 100 findings) cut well
# within, counted in UTF-8 bytes at worst 4 a character.
rehearsal_states["NotReady"] = O(
    Type="Fail",
    Comment="The rehearsal found something a failback would stumble on, or could not be made: mend it (docs/operating.md, Rehearsal).",
    Error="RehearsalNotReady",
    Cause=j("$substring($string($verdict), 0, 8000)"),
)
REHEARSAL = O(
    Comment="drs-failback: a rehearsal, on the stack's schedule: the plan the operator stored with the stack, dry-run by the function against DRS as it stands, judged, announced (Failback Rehearsal Finished) and counted (RehearsalsFailed), so that IAM drift, a deleted role or instance, or a changed tag shows before the failback needs it.",
    QueryLanguage="JSONata",
    # A plan check takes minutes at most; retries included, an hour is far.
    TimeoutSeconds=3600,
    StartAt="Begin",
    States=rehearsal_states,
)

PLAN = O(
    Comment="drs-failback: a whole failback, as an ordered plan of steps (a plain request is one step). The function checks the plan; each step runs as a child execution of the step state machine (and, past its share of calls, in fresh ones), which launches its recovery instances within the DRS quotas and tracks the jobs until each launched instance has its final result, then sums it up and decides whether the plan goes on (critical instances, maxFailed). Between steps: waitAfterSeconds, and an approval when asked for. Step Started, Approval Requested, Plan Halted and Run Finished are published from here. A failed step execution fails this execution at StepGate; a redrive of this execution redrives the step execution and goes on.",
    QueryLanguage="JSONata",
    TimeoutSeconds=RUN_TIMEOUT_SECONDS,
    StartAt="ReadRequest",
    States=plan_states,
)
STEP = O(
    Comment="drs-failback: one step of a failback plan, started by the plan. Launches the step's recovery instances within the DRS quotas, tracks the jobs every TrackIntervalSeconds until each launched instance has its final result, launches the deferred ones as jobs finish and quota frees up (same runId, at most MaxRounds launch rounds, TimeLimitSeconds from the step's start), and ends with a last tracking call that sums the step up (stepResult). The function says what comes next after every call; past its share of calls the execution ends with the step as it stands (handover) and the plan starts a fresh one. A call that fails for good fails the execution at that call: a redrive makes it again.",
    QueryLanguage="JSONata",
    TimeoutSeconds=RUN_TIMEOUT_SECONDS,
    StartAt="Begin",
    States=step_states,
)
if __name__ == "__main__":
    import sys
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    machines = {"plan": PLAN, "step": STEP, "rehearsal": REHEARSAL}
    if which not in machines:
        sys.exit("usage: gen.py plan|step|rehearsal")
    print(json.dumps(machines[which], indent=2, ensure_ascii=False))
