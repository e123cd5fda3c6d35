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
    "inputs": {},
    "context": {},
    "status": "running",
    "currentNode": null,
    "attempts": {},
    "capCounts": {},
    "escalations": {},
    "maxIterationsDefault": 3,
    "error": null,
    "approvals": {},
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
        "RunFailed": [
          {
            "target": "exceeded_iteration_cap",
            "guard": {
              "type": "causeIs",
              "params": {
                "cause": "exceeded_iteration_cap"
              }
            },
            "actions": "apply"
          },
          {
            "target": "failed",
            "actions": "apply"
          }
        ],
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
                "NodeSucceeded": [
                  {
                    "target": "#ci-gate.active.full_suite",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "lint",
                        "to": "full_suite"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "#ci-gate.active.smoke",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "lint",
                        "to": "smoke"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "lint"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "lint"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "canRetry",
                      "params": {
                        "node": "lint"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "lint"
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
                  "target": "#ci-gate.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
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
                "NodeSucceeded": [
                  {
                    "target": "#ci-gate.active.report",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "full_suite",
                        "to": "report"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "full_suite"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "full_suite"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "canRetry",
                      "params": {
                        "node": "full_suite"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "full_suite"
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
                  "target": "#ci-gate.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
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
                "NodeSucceeded": [
                  {
                    "target": "#ci-gate.active.report",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "smoke",
                        "to": "report"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "smoke"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "smoke"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "canRetry",
                      "params": {
                        "node": "smoke"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "smoke"
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
                  "target": "#ci-gate.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
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
                "NodeSucceeded": [
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "report"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "report"
                      }
                    },
                    "actions": "apply"
                  }
                ],
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "canRetry",
                      "params": {
                        "node": "report"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "report"
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
                  "target": "#ci-gate.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        }
      }
    },
    "completed": {
      "type": "final"
    },
    "failed": {
      "type": "final"
    },
    "exceeded_iteration_cap": {
      "type": "final"
    },
    "cancelled": {
      "type": "final"
    }
  }
});
