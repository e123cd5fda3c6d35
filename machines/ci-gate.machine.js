// Generated from starter/ci-gate.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "ci-gate", sourceHash 540533ed78a14defee0b48ff050321fb61f33a7344bd5698cb03fe2ee468a02e
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "ci-gate",
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
      "initial": "lint",
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
        "lint": {
          "description": "Stands in for a linter; prints a JSON verdict.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "lint"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "routing",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "lint"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "lint",
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
                        "node": "lint",
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
                        "node": "lint",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ]
              }
            },
            "routing": {
              "always": [
                {
                  "target": "#ci-gate.active.full_suite",
                  "guard": {
                    "type": "branchesTo",
                    "params": {
                      "node": "lint",
                      "to": "full_suite"
                    }
                  }
                },
                {
                  "target": "#ci-gate.active.smoke"
                }
              ]
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ci-gate.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "lint",
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
                  "target": "#ci-gate.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "lint",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "full_suite": {
          "description": "The complete test run, taken only when mode is \"full\".",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "full_suite"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "#ci-gate.active.report",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "full_suite"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "full_suite",
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
                        "node": "full_suite",
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
                        "node": "full_suite",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ]
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ci-gate.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "full_suite",
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
                  "target": "#ci-gate.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "full_suite",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "smoke": {
          "description": "The quick path (the default branch).",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "smoke"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "#ci-gate.active.report",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "smoke"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "smoke",
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
                        "node": "smoke",
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
                        "node": "smoke",
                        "decision": "exhaust"
                      }
                    },
                    "actions": "apply"
                  }
                ]
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ci-gate.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "smoke",
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
                  "target": "#ci-gate.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "smoke",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "report": {
          "description": "Summarises the gate; runs after whichever branch was taken.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "report"
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
                    "type": "succeedsNode",
                    "params": {
                      "node": "report"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "report",
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
                        "node": "report",
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
                        "node": "report",
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
                      "node": "report"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "done": {
              "on": {
                "RunCompleted": {
                  "target": "#ci-gate.completed",
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#ci-gate.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "report",
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
                  "target": "#ci-gate.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "report",
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
            "target": "#ci-gate.active.lint",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "lint"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ci-gate.active.full_suite",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "full_suite"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ci-gate.active.smoke",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "smoke"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ci-gate.active.report",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "report"
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
            "target": "#ci-gate.active.lint",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "lint"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ci-gate.active.full_suite",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "full_suite"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ci-gate.active.smoke",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "smoke"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#ci-gate.active.report",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "report"
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
