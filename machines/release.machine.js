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
      "initial": "version_bump",
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
                "NodeSucceeded": {
                  "target": "#release.active.changelog",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "version_bump"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "version_bump",
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
                        "node": "version_bump",
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
                        "node": "version_bump",
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
                  "target": "#release.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "version_bump",
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
                  "target": "#release.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "version_bump",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
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
                "NodeSucceeded": {
                  "target": "#release.active.approval",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "changelog"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "changelog",
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
                        "node": "changelog",
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
                        "node": "changelog",
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
                  "target": "#release.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "changelog",
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
                  "target": "#release.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "changelog",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
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
                },
                "ApprovalExpired": {
                  "target": "expired",
                  "guard": {
                    "type": "expiresNow",
                    "params": {
                      "node": "approval"
                    }
                  },
                  "actions": "apply"
                },
                "RunFailed": {
                  "target": "#release.failed",
                  "guard": {
                    "type": "expiresGate",
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
                "RunResumed": {
                  "target": "#release.active.publish",
                  "actions": "apply",
                  "guard": {
                    "type": "isResumable",
                    "params": {
                      "node": "approval"
                    }
                  }
                }
              }
            },
            "rejected": {
              "on": {
                "RunFailed": {
                  "target": "#release.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "approval",
                      "cause": "approval_rejected"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "expired": {
              "on": {
                "RunFailed": {
                  "target": "#release.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "approval",
                      "cause": "approval_expired"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
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
                "NodeSucceeded": {
                  "target": "done",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "publish"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "publish",
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
                        "node": "publish",
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
                        "node": "publish",
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
                  "target": "#release.completed",
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#release.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "publish",
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
                  "target": "#release.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "publish",
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
            "target": "#release.active.version_bump",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "version_bump"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#release.active.changelog",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "changelog"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#release.active.approval",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "approval"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#release.active.publish",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "publish"
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
            "target": "#release.active.version_bump",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "version_bump"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#release.active.changelog",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "changelog"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#release.active.approval",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "approval"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#release.active.publish",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "publish"
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
