/**
 * cantbook: an embeddable runtime for agent playbooks.
 *
 * Parse a `.cantbook` file, compile it to an XState v5 machine, and run it as an
 * event-sourced actor over SQLite: every step is an event in an append-only,
 * hash-chained log; a run's state and its approvals are folds of that log.
 *
 * @example
 * import { parsePlaybook, openSqliteStore, executePlaybook } from 'cantbook';
 * const source = readFileSync('release.cantbook', 'utf8');
 * const { definition } = parsePlaybook(source);
 * const store = openSqliteStore('.cantbook/cantbook.db');
 * const result = await executePlaybook({ store, playbook: definition, source,
 *   initialContext: { targetVersion: '1.2.0' }, dispatcher });
 */

// Format
export { parsePlaybook } from './playbook/parsePlaybook.js';
export { PlaybookParseError } from './playbook/parseError.js';
export { formatIssue, formatIssues } from './playbook/formatIssues.js';
export { renderTemplate } from './playbook/templates.js';
export { parseDuration } from './playbook/duration.js';
export { outgoingEdges, entryNodeId, findNode } from './playbook/graph.js';
export { issueCodes } from './playbook/issues.js';
export type { IssueCode } from './playbook/issues.js';
export type {
  PlaybookDefinition,
  PlaybookNode,
  AgenticNode,
  DeterministicNode,
  ApprovalNode,
  ParallelNode,
  PlaybookRefNode,
  MapNode,
  ChildRunNode,
  PlaybookBranch,
  PlaybookEdge,
  EdgeCondition,
  PlaybookInput,
  PlaybookIssue,
  ParsedPlaybook,
  ParsePlaybookOptions,
  ApprovalPolicy,
} from './playbook/types.js';

// Child playbooks (SPEC §12)
export { pinPlaybookTree, pinnedSubtree, MAX_PLAYBOOK_NESTING } from './playbook/resolvePlaybooks.js';
export type { PlaybookResolver, ResolvedPlaybook } from './playbook/resolvePlaybooks.js';
export { createFileResolver } from './adapters/fileResolver.js';
export type { FileResolverOptions } from './adapters/fileResolver.js';
export { childRunIdOf } from './compiler/childRuns.js';

// Approval policies (SPEC §13)
export { evaluatePolicy, DEFAULT_POLICY_RULES, policyRuleIssues, I_POLICY_RULE_INVALID } from './policy/evaluatePolicy.js';
export type { PolicyRule, PolicyAction, EvaluatePolicyResult, PolicyRuleIssue } from './policy/evaluatePolicy.js';
export { commandsAfterGate, decideGatePolicy } from './policy/gatePolicy.js';
export type { GuardedCommand, GuardedCommandDecision, GatePolicyDecision, DecideGatePolicyOptions } from './policy/gatePolicy.js';

// ensures.schema registry (SPEC §13)
export { checkEnsuresSchema, BUILTIN_SCHEMAS, taskTreeSchema, evidenceSchema, C_SCHEMA_UNKNOWN, C_SCHEMA_MISMATCH } from './contracts/ensuresSchema.js';
export type { SchemaRegistry, SchemaEntry, SafeParser, SchemaViolation, EnsuresSchemaResult } from './contracts/ensuresSchema.js';

// Compiler
export { compilePlaybook, finalStates } from './compiler/compilePlaybook.js';
export type { PlaybookMachine, FinalState, NodePhase } from './compiler/compilePlaybook.js';
export { foldRun, initialRunSnapshot } from './compiler/foldRun.js';
export type { RunSnapshot } from './compiler/foldRun.js';

// Events and projections
export type {
  RunEvent,
  NewRunEvent,
  RunEventType,
  RunEventDataMap,
  RunContext,
  RunOwner,
  FailureCause,
  ContractKind,
  ContractViolatedData,
  EscalationData,
  EscalationTrigger,
  ParentRef,
  PinnedPlaybooks,
  PinnedText,
  ChildRunStartedData,
  ChildRunSettledData,
  ChildRunStatus,
  RunStartedData,
} from './events/types.js';
export { runEventTypes } from './events/types.js';
export type { RunRow, RunChanges, ApprovalRow, RunStatus, ApprovalStatus, ActiveNode, RunError } from './projections/types.js';
export type { RunState, GateState, ChildSet, ChildOutcome } from './compiler/runState.js';
export { contextOf, isRedrivable } from './compiler/runState.js';
export { nextSteps, runStatusOf } from './compiler/nextStep.js';
export type { NextStep } from './compiler/nextStep.js';
export { activeNodes } from './compiler/stateValue.js';
export { remainingNodes } from './compiler/remainingNodes.js';
export { createPlaybookModel, decideFailure, describeFailurePolicy, DEFAULT_MAX_ITERATIONS } from './compiler/playbookModel.js';
export type { FailureDecision, PlaybookModel, BranchModel } from './compiler/playbookModel.js';
export { foldRunSteps } from './projections/foldRunSteps.js';
export { replayInspection, INSPECTION_PROTOCOL_VERSION } from './projections/replayInspection.js';
export type {
  InspectionRecord,
  InspectionActorRecord,
  InspectionEventRecord,
  InspectionSnapshotRecord,
  InspectedRunSnapshot,
  InspectedEvent,
  ReplayInspectionOptions,
} from './projections/replayInspection.js';

// Store
export { openSqliteStore } from './store/sqliteEventStore.js';
export type { SqliteStoreOptions } from './store/sqliteEventStore.js';
export { openPostgresStore } from './store/postgresEventStore.js';
export type { PostgresStoreOptions, PostgresStoreTarget } from './store/postgresEventStore.js';
export type { EventStore, AppendRequest, ListRunsFilter, ListApprovalsFilter, Lease, AcquireLeaseRequest, ClaimRunsRequest, RunSettings, AttemptLog } from './store/eventStore.js';

// Adapters (ports)
export type { AgentDispatcher, DeterministicRunner, DispatchRequest, RunCommandRequest, NodeOutcome } from './adapters/types.js';
export { createSubprocessRunner } from './adapters/subprocessRunner.js';
export { createDispatcherFromSpec } from './adapters/dispatcherSpec.js';
export { splitCommandLine } from './adapters/commandLine.js';

// Runtime
export { executePlaybook, startRun, checkInputs } from './runtime/executePlaybook.js';
export type { ExecutePlaybookOptions, StartedRun } from './runtime/executePlaybook.js';
export { cancelRun, retryRun } from './runtime/runControl.js';
export type { CancelRunOptions, RetryRunOptions } from './runtime/runControl.js';
export { createWorker } from './runtime/worker.js';
export type { Worker, WorkerOptions, WorkerStats } from './runtime/worker.js';
export { systemClock } from './runtime/clock.js';
export type { Clock } from './runtime/clock.js';
export { approveGate, rejectGate, resumePlaybook, resumeRun, sweepExpiredApprovals, MAX_APPROVER_LENGTH, MAX_REASON_LENGTH } from './runtime/gates.js';
export type { GateDecisionOptions, GateDecisionResult, ResumePlaybookOptions, ResumeRunOptions, SweepOptions } from './runtime/gates.js';
export { recoverRun } from './runtime/recoverRun.js';
export type { RecoverRunOptions } from './runtime/recoverRun.js';
export { replayRun } from './runtime/replayRun.js';
export { loadRun } from './runtime/loadRun.js';
export type { LoadedRun } from './runtime/loadRun.js';
export type { RunReplay } from './runtime/replayRun.js';
export { getRun, listRuns, readRunEvents, getPendingApprovals, verifyRun, verifyStore, rebuildProjections, getRunHead } from './runtime/queries.js';
export type { PendingApproval, VerifyProblem, VerifyResult, VerifyRunOptions } from './runtime/queries.js';
export { formatAnchor, parseAnchor } from './events/anchor.js';
export type { RunAnchor } from './events/anchor.js';
export type { PlaybookResult, TerminalStatus, HostOptions, DriveOutcome } from './runtime/runSession.js';
export { DEFAULT_LEASE_MS } from './runtime/runSession.js';

// Errors
export {
  CantbookError,
  hasCode,
  exitCodes,
  E_PLAYBOOK_PARSE,
  E_PLAYBOOK_RUNTIME_INVALID,
  E_PLAYBOOK_RESUME_BLOCKED,
  E_APPROVAL_NOT_FOUND,
  E_APPROVAL_ALREADY_DECIDED,
  E_APPROVAL_TOKEN_INVALID,
  E_APPROVAL_EXPIRED,
  E_APPROVAL_SECRET_MISSING,
  E_CONCURRENT_UPDATE,
  E_RUN_NOT_FOUND,
  E_INPUT_MISSING,
  E_INPUT_UNKNOWN,
  E_LOG_CORRUPT,
  E_STORE_UNAVAILABLE,
  E_USAGE,
  E_FILE_UNREADABLE,
  E_ADAPTER_INVALID,
  E_RUN_ACTIVE,
  E_LEASE_LOST,
  E_RUN_INTERRUPTED,
  E_RUN_FINISHED,
  E_RUN_NOT_RETRYABLE,
  E_PLAYBOOK_NOT_FOUND,
  E_PLAYBOOK_CYCLE,
} from './errors.js';
export type { CantbookErrorCode } from './errors.js';
