// Generated from starter/ivtr.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "ivtr", sourceHash beb2c59cf8fe29d449555f2af6785f50b322e90f49fea9b3a50a5d02a11f0f3f
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
      "initial": "implement",
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
                "NodeSucceeded": [
                  {
                    "target": "#ivtr.active.validate",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "implement",
                        "to": "validate"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "implement"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "implement"
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
                        "node": "implement"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "implement"
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
            "unrouted": {},
            "exhausted": {}
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
                    "type": "isNode",
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
                "NodeSucceeded": [
                  {
                    "target": "#ivtr.active.test",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "validate",
                        "to": "test"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "validate"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "validate"
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
                        "node": "validate"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "escalating",
                    "guard": {
                      "type": "canEscalate",
                      "params": {
                        "node": "validate"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "validate"
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
            "unrouted": {},
            "exhausted": {},
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
                    "type": "isNode",
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
                "NodeSucceeded": [
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "test"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "test"
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
                        "node": "test"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "escalating",
                    "guard": {
                      "type": "canEscalate",
                      "params": {
                        "node": "test"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "test"
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
            "unrouted": {},
            "exhausted": {},
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
            }
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
