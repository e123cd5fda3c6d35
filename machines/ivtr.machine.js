// Generated from starter/ivtr.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "ivtr", sourceHash eb28ae91c26eb134ab4266b670cadddca82f199ba08186476f2a07a048b5559a
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "ivtr",
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
      "initial": "implement",
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
        "implement": {
          "description": "Writes or fixes the code for the task; on a re-entry it reads __lastError.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "implement"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "checking",
                  "guard": {
                    "type": "succeedsNode",
                    "params": {
                      "node": "implement"
                    }
                  },
                  "actions": "apply"
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "implement",
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
                        "node": "implement",
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
                        "node": "implement",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "ContractViolated": {
                  "guard": {
                    "type": "violatesOnExit",
                    "params": {
                      "node": "implement"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ivtr.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "implement",
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
                  "target": "#ivtr.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "implement",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "checking": {
              "always": [
                {
                  "target": "violated",
                  "guard": {
                    "type": "exitViolated",
                    "params": {
                      "node": "implement"
                    }
                  }
                },
                {
                  "target": "#ivtr.active.validate"
                }
              ]
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#ivtr.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "implement",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "validate": {
          "description": "Checks the change against the task's specification and conventions.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "startsNode",
                    "params": {
                      "node": "validate"
                    }
                  },
                  "actions": "apply"
                },
                "ContractViolated": {
                  "target": "violated",
                  "guard": {
                    "type": "violatesOnEntry",
                    "params": {
                      "node": "validate"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "#ivtr.active.test",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "validate"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "escalating",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "validate",
                        "decision": "escalate"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "validate",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ]
              }
            },
            "escalating": {
              "on": {
                "NodeEscalated": {
                  "target": "#ivtr.active.implement",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "validate"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ivtr.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "validate",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#ivtr.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "validate",
                      "cause": "contract_violation"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "test": {
          "description": "Runs and extends the tests that cover the change.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "startsNode",
                    "params": {
                      "node": "test"
                    }
                  },
                  "actions": "apply"
                },
                "ContractViolated": {
                  "target": "violated",
                  "guard": {
                    "type": "violatesOnEntry",
                    "params": {
                      "node": "test"
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
                    "type": "isNode",
                    "params": {
                      "node": "test"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "escalating",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "test",
                        "decision": "escalate"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "test",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ]
              }
            },
            "done": {
              "on": {
                "RunCompleted": {
                  "target": "#ivtr.completed",
                  "actions": "apply"
                }
              }
            },
            "escalating": {
              "on": {
                "NodeEscalated": {
                  "target": "#ivtr.active.implement",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "test"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ivtr.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "test",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "violated": {
              "on": {
                "RunFailed": {
                  "target": "#ivtr.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "test",
                      "cause": "contract_violation"
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
            "target": "#ivtr.active.implement",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "implement"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ivtr.active.validate",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "validate"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ivtr.active.test",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "test"
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
            "target": "#ivtr.active.implement",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "implement"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ivtr.active.validate",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "validate"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ivtr.active.test",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "test"
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
