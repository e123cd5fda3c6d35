// Generated from starter/epic.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "epic", sourceHash 6b899754aa34d2674d0cc4011d00109e464f52297fe77901ff1663c30daaea44
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
// Child runs: each of these states runs another playbook as a run of its own; cantbook starts and settles them.
//   plan: playbook · rcasd.cantbook
//   implement_all: map tasks → ivtr.cantbook (≤ 3)
//   release: playbook · release.cantbook
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "epic",
  "initial": "idle",
  "context": {
    "runId": "",
    "playbookName": "",
    "sourceHash": "",
    "playbookHash": "",
    "inputs": {},
    "context": {},
    "branchOutputs": {},
    "attempts": {},
    "capCounts": {},
    "escalations": {},
    "maxIterationsDefault": 3,
    "error": null,
    "lastError": null,
    "nodeErrors": {},
    "approvals": {},
    "retryDue": {},
    "succeededBranches": {},
    "succeededNodes": {},
    "keptBranches": {},
    "keptNodes": {},
    "contractViolations": {},
    "escalationGates": {},
    "parent": null,
    "pinned": null,
    "children": {},
    "startedAt": "",
    "updatedAt": "",
    "completedAt": null,
    "version": 0,
    "epicId": null,
    "sessionId": null
  },
  "states": {
    "idle": {
      "on": {
        "RunStarted": {
          "target": "active",
          "actions": "apply"
        }
      }
    },
    "active": {
      "initial": "plan",
      "on": {
        "RunFailed": {
          "target": "failed",
          "guard": {
            "type": "isInternalError"
          },
          "actions": "apply"
        },
        "RunCancelled": {
          "target": "cancelled",
          "actions": "apply"
        }
      },
      "states": {
        "plan": {
          "description": "Research, consensus, architecture, specification and decomposition of the epic.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "plan"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "#epic.active.implement_all",
                  "actions": "apply",
                  "guard": {
                    "type": "childrenSucceed",
                    "params": {
                      "node": "plan"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "plan",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "plan",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "plan",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ChildRunStarted": {
                  "guard": {
                    "type": "startsChild",
                    "params": {
                      "node": "plan"
                    }
                  },
                  "actions": "apply"
                },
                "ChildRunSettled": {
                  "guard": {
                    "type": "settlesChild",
                    "params": {
                      "node": "plan"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#epic.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "plan",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#epic.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "plan",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "implement_all": {
          "description": "One ivtr run per task of the plan, at most three at a time.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "implement_all"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "#epic.active.release",
                  "actions": "apply",
                  "guard": {
                    "type": "childrenSucceed",
                    "params": {
                      "node": "implement_all"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "implement_all",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "implement_all",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "implement_all",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ChildRunStarted": {
                  "guard": {
                    "type": "startsChild",
                    "params": {
                      "node": "implement_all"
                    }
                  },
                  "actions": "apply"
                },
                "ChildRunSettled": {
                  "guard": {
                    "type": "settlesChild",
                    "params": {
                      "node": "implement_all"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#epic.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "implement_all",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#epic.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "implement_all",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "release": {
          "description": "Bumps the version, writes the changelog, waits for a maintainer, publishes once.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "release"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "done",
                  "actions": "apply",
                  "guard": {
                    "type": "childrenSucceed",
                    "params": {
                      "node": "release"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "release",
                        "decision": "retry"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unretryable",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "release",
                        "decision": "give_up"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "release",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ChildRunStarted": {
                  "guard": {
                    "type": "startsChild",
                    "params": {
                      "node": "release"
                    }
                  },
                  "actions": "apply"
                },
                "ChildRunSettled": {
                  "guard": {
                    "type": "settlesChild",
                    "params": {
                      "node": "release"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "done": {
              "on": {
                "RunCompleted": {
                  "target": "#epic.completed",
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#epic.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "release",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "unretryable": {
              "on": {
                "RunFailed": {
                  "target": "#epic.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "release",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        }
      }
    },
    "completed": {
      "type": "final"
    },
    "failed": {
      "on": {
        "RunRetried": [
          {
            "target": "#epic.active.plan",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "plan"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#epic.active.implement_all",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "implement_all"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#epic.active.release",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "release"
              }
            },
            "actions": "apply"
          }
        ]
      }
    },
    "exceeded_iteration_cap": {
      "on": {
        "RunRetried": [
          {
            "target": "#epic.active.plan",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "plan"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#epic.active.implement_all",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "implement_all"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#epic.active.release",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "release"
              }
            },
            "actions": "apply"
          }
        ]
      }
    },
    "cancelled": {
      "type": "final"
    }
  }
});
