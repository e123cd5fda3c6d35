// Generated from starter/rcasd.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "rcasd", sourceHash e044497ad96a3e8107efc6145de29a131e9d406eb011c7c49783fc12ced724ad
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "rcasd",
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
      "initial": "research",
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
        "research": {
          "description": "Gathers prior art, constraints and open questions for the epic.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "research"
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
                    "target": "#rcasd.active.consensus",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "research",
                        "to": "consensus"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "research"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "research"
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
                        "node": "research"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "research"
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
                  "target": "#rcasd.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        },
        "consensus": {
          "description": "Weighs the research findings and records the options the team agrees on.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "consensus"
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
                    "target": "#rcasd.active.architecture",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "consensus",
                        "to": "architecture"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "consensus"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "consensus"
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
                        "node": "consensus"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "consensus"
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
                  "target": "#rcasd.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        },
        "architecture": {
          "description": "Turns the agreed option into components, boundaries and data flow.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "architecture"
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
                    "target": "#rcasd.active.specification",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "architecture",
                        "to": "specification"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "architecture"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "architecture"
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
                        "node": "architecture"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "architecture"
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
                  "target": "#rcasd.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        },
        "specification": {
          "description": "Writes the testable specification the implementation will be held to.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "specification"
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
                    "target": "#rcasd.active.decomposition",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "specification",
                        "to": "decomposition"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "specification"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "specification"
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
                        "node": "specification"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "specification"
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
                  "target": "#rcasd.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        },
        "decomposition": {
          "description": "Splits the specification into ordered, independently shippable tasks.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "decomposition"
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
                        "node": "decomposition"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "decomposition"
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
                        "node": "decomposition"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "decomposition"
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
                  "target": "#rcasd.completed",
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
