// Generated from starter/release.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "release", sourceHash fc9f18f0c197686d4109fd0fb8e322c7727d4c8ba93e59455fbc6b66abac6675
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "release",
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
      "initial": "version_bump",
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
        "version_bump": {
          "description": "Sets the package version to the target version and commits it.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "version_bump"
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
                    "target": "#release.active.changelog",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "version_bump",
                        "to": "changelog"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "version_bump"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "version_bump"
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
                        "node": "version_bump"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "version_bump"
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
                  "target": "#release.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        },
        "changelog": {
          "description": "Summarises the changes since the last release into the changelog.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "changelog"
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
                    "target": "#release.active.approval",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "changelog",
                        "to": "approval"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "changelog"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "changelog"
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
                        "node": "changelog"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "changelog"
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
                  "target": "#release.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {},
            "exhausted": {}
          }
        },
        "approval": {
          "description": "A maintainer reviews the bump and the changelog before anything is published.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "RunPaused": {
                  "target": "paused",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "approval"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "paused": {
              "on": {
                "ApprovalGranted": {
                  "target": "approved",
                  "guard": {
                    "type": "isOpenGate",
                    "params": {
                      "node": "approval"
                    }
                  },
                  "actions": "apply"
                },
                "ApprovalRejected": {
                  "target": "rejected",
                  "guard": {
                    "type": "isOpenGate",
                    "params": {
                      "node": "approval"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "approved": {
              "on": {
                "RunResumed": [
                  {
                    "target": "#release.active.publish",
                    "guard": {
                      "type": "branchesTo",
                      "params": {
                        "node": "approval",
                        "to": "publish"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "done",
                    "guard": {
                      "type": "exits",
                      "params": {
                        "node": "approval"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "approval"
                      }
                    },
                    "actions": "apply"
                  }
                ]
              }
            },
            "rejected": {},
            "done": {
              "on": {
                "RunCompleted": {
                  "target": "#release.completed",
                  "actions": "apply"
                }
              }
            },
            "unrouted": {}
          }
        },
        "publish": {
          "description": "Publishes the approved version to the channel. One attempt only.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "publish"
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
                        "node": "publish"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "unrouted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "publish"
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
                        "node": "publish"
                      }
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "isNode",
                      "params": {
                        "node": "publish"
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
                  "target": "#release.completed",
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
