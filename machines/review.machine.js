// Generated from starter/review.cantbook by `npm run machines`. Do not edit: change the playbook and regenerate.
// Playbook "review", sourceHash 1faa56c9515f47f2edff5b8c3f21448128fa233522ba6f12564931e1d5de7c54
// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).
// Guards and the `apply` action are referenced by name with their params; cantbook implements them.
import { createMachine } from 'xstate';

export const machine = createMachine({
  "id": "review",
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
      "initial": "build",
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
        "build": {
          "description": "Builds the change and reports the artifact.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "build"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "on": {
                "NodeSucceeded": {
                  "target": "#review.active.reviews",
                  "actions": "apply",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "build"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "build",
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
                        "node": "build",
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
                        "node": "build",
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
                  "target": "#review.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "build",
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
                  "target": "#review.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "build",
                      "cause": "not_retryable"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "reviews": {
          "description": "Three reviews at once; the first failed review stops the others.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "reviews"
                    }
                  },
                  "actions": "apply"
                }
              }
            },
            "running": {
              "type": "parallel",
              "on": {
                "NodeSucceeded": {
                  "target": "#review.active.merge",
                  "actions": "apply",
                  "guard": {
                    "type": "joins:reviews"
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "fails:retry:reviews"
                    },
                    "actions": "apply"
                  },
                  {
                    "target": "exhausted",
                    "guard": {
                      "type": "fails:exhaust:reviews"
                    },
                    "actions": "apply"
                  }
                ]
              },
              "states": {
                "security": {
                  "description": "An automated scan, then a human accepts its findings.",
                  "initial": "entering",
                  "states": {
                    "entering": {
                      "always": [
                        {
                          "target": "succeeded",
                          "guard": {
                            "type": "keepsBranch",
                            "params": {
                              "branch": "security"
                            }
                          }
                        },
                        {
                          "target": "nodes"
                        }
                      ]
                    },
                    "nodes": {
                      "initial": "scan",
                      "states": {
                        "scan": {
                          "description": "agentic node",
                          "initial": "ready",
                          "states": {
                            "ready": {
                              "on": {
                                "NodeStarted": {
                                  "target": "running",
                                  "guard": {
                                    "type": "starts:scan"
                                  },
                                  "actions": "apply"
                                }
                              },
                              "always": [
                                {
                                  "target": "#review.active.reviews.running.security.nodes.sec_gate",
                                  "guard": {
                                    "type": "keepsNode",
                                    "params": {
                                      "node": "scan"
                                    }
                                  }
                                }
                              ]
                            },
                            "running": {
                              "on": {
                                "NodeSucceeded": {
                                  "target": "#review.active.reviews.running.security.nodes.sec_gate",
                                  "actions": "apply",
                                  "guard": {
                                    "type": "isNode",
                                    "params": {
                                      "node": "scan"
                                    }
                                  }
                                },
                                "NodeFailed": [
                                  {
                                    "target": "#review.active.reviews.running.security.stopped",
                                    "guard": {
                                      "type": "aborts:scan"
                                    },
                                    "actions": "apply"
                                  },
                                  {
                                    "target": "ready",
                                    "guard": {
                                      "type": "failsWith",
                                      "params": {
                                        "node": "scan",
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
                                        "node": "scan",
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
                                        "node": "scan",
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
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.security.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "scan",
                                      "cause": "exceeded_iteration_cap"
                                    }
                                  },
                                  "actions": "apply"
                                }
                              }
                            },
                            "unretryable": {
                              "on": {
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.security.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "scan",
                                      "cause": "not_retryable"
                                    }
                                  },
                                  "actions": "apply"
                                }
                              }
                            }
                          }
                        },
                        "sec_gate": {
                          "description": "approval node",
                          "initial": "ready",
                          "states": {
                            "ready": {
                              "on": {
                                "RunPaused": {
                                  "target": "paused",
                                  "guard": {
                                    "type": "starts:sec_gate"
                                  },
                                  "actions": "apply"
                                }
                              },
                              "always": [
                                {
                                  "target": "#review.active.reviews.running.security.succeeded",
                                  "guard": {
                                    "type": "keepsNode",
                                    "params": {
                                      "node": "sec_gate"
                                    }
                                  }
                                }
                              ]
                            },
                            "paused": {
                              "on": {
                                "ApprovalGranted": {
                                  "target": "approved",
                                  "guard": {
                                    "type": "isOpenGate",
                                    "params": {
                                      "node": "sec_gate"
                                    }
                                  },
                                  "actions": "apply"
                                },
                                "ApprovalRejected": {
                                  "target": "rejected",
                                  "guard": {
                                    "type": "isOpenGate",
                                    "params": {
                                      "node": "sec_gate"
                                    }
                                  },
                                  "actions": "apply"
                                },
                                "ApprovalExpired": {
                                  "target": "expired",
                                  "guard": {
                                    "type": "expiresNow",
                                    "params": {
                                      "node": "sec_gate"
                                    }
                                  },
                                  "actions": "apply"
                                },
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.security.failed",
                                  "guard": {
                                    "type": "expiresGate",
                                    "params": {
                                      "node": "sec_gate"
                                    }
                                  },
                                  "actions": "apply"
                                },
                                "ApprovalCancelled": {
                                  "target": "#review.active.reviews.running.security.stopped",
                                  "guard": {
                                    "type": "cancelsGate:sec_gate"
                                  },
                                  "actions": "apply"
                                }
                              }
                            },
                            "approved": {
                              "on": {
                                "RunResumed": {
                                  "target": "#review.active.reviews.running.security.succeeded",
                                  "actions": "apply",
                                  "guard": {
                                    "type": "isResumable",
                                    "params": {
                                      "node": "sec_gate"
                                    }
                                  }
                                }
                              }
                            },
                            "rejected": {
                              "on": {
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.security.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "sec_gate",
                                      "cause": "approval_rejected"
                                    }
                                  },
                                  "actions": "apply"
                                }
                              }
                            },
                            "expired": {
                              "on": {
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.security.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "sec_gate",
                                      "cause": "approval_expired"
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
                    "succeeded": {
                      "type": "final"
                    },
                    "failed": {
                      "type": "final"
                    },
                    "stopped": {
                      "type": "final"
                    }
                  }
                },
                "perf": {
                  "description": "Benchmarks against the main branch.",
                  "initial": "entering",
                  "states": {
                    "entering": {
                      "always": [
                        {
                          "target": "succeeded",
                          "guard": {
                            "type": "keepsBranch",
                            "params": {
                              "branch": "perf"
                            }
                          }
                        },
                        {
                          "target": "nodes"
                        }
                      ]
                    },
                    "nodes": {
                      "initial": "bench",
                      "states": {
                        "bench": {
                          "description": "agentic node",
                          "initial": "ready",
                          "states": {
                            "ready": {
                              "on": {
                                "NodeStarted": {
                                  "target": "running",
                                  "guard": {
                                    "type": "starts:bench"
                                  },
                                  "actions": "apply"
                                }
                              },
                              "always": [
                                {
                                  "target": "#review.active.reviews.running.perf.succeeded",
                                  "guard": {
                                    "type": "keepsNode",
                                    "params": {
                                      "node": "bench"
                                    }
                                  }
                                }
                              ]
                            },
                            "running": {
                              "on": {
                                "NodeSucceeded": {
                                  "target": "#review.active.reviews.running.perf.succeeded",
                                  "actions": "apply",
                                  "guard": {
                                    "type": "isNode",
                                    "params": {
                                      "node": "bench"
                                    }
                                  }
                                },
                                "NodeFailed": [
                                  {
                                    "target": "#review.active.reviews.running.perf.stopped",
                                    "guard": {
                                      "type": "aborts:bench"
                                    },
                                    "actions": "apply"
                                  },
                                  {
                                    "target": "ready",
                                    "guard": {
                                      "type": "failsWith",
                                      "params": {
                                        "node": "bench",
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
                                        "node": "bench",
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
                                        "node": "bench",
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
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.perf.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "bench",
                                      "cause": "exceeded_iteration_cap"
                                    }
                                  },
                                  "actions": "apply"
                                }
                              }
                            },
                            "unretryable": {
                              "on": {
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.perf.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "bench",
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
                    "succeeded": {
                      "type": "final"
                    },
                    "failed": {
                      "type": "final"
                    },
                    "stopped": {
                      "type": "final"
                    }
                  }
                },
                "docs": {
                  "description": "Checks that user-facing changes are documented.",
                  "initial": "entering",
                  "states": {
                    "entering": {
                      "always": [
                        {
                          "target": "succeeded",
                          "guard": {
                            "type": "keepsBranch",
                            "params": {
                              "branch": "docs"
                            }
                          }
                        },
                        {
                          "target": "nodes"
                        }
                      ]
                    },
                    "nodes": {
                      "initial": "docs_review",
                      "states": {
                        "docs_review": {
                          "description": "agentic node",
                          "initial": "ready",
                          "states": {
                            "ready": {
                              "on": {
                                "NodeStarted": {
                                  "target": "running",
                                  "guard": {
                                    "type": "starts:docs_review"
                                  },
                                  "actions": "apply"
                                }
                              },
                              "always": [
                                {
                                  "target": "#review.active.reviews.running.docs.succeeded",
                                  "guard": {
                                    "type": "keepsNode",
                                    "params": {
                                      "node": "docs_review"
                                    }
                                  }
                                }
                              ]
                            },
                            "running": {
                              "on": {
                                "NodeSucceeded": {
                                  "target": "#review.active.reviews.running.docs.succeeded",
                                  "actions": "apply",
                                  "guard": {
                                    "type": "isNode",
                                    "params": {
                                      "node": "docs_review"
                                    }
                                  }
                                },
                                "NodeFailed": [
                                  {
                                    "target": "#review.active.reviews.running.docs.stopped",
                                    "guard": {
                                      "type": "aborts:docs_review"
                                    },
                                    "actions": "apply"
                                  },
                                  {
                                    "target": "ready",
                                    "guard": {
                                      "type": "failsWith",
                                      "params": {
                                        "node": "docs_review",
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
                                        "node": "docs_review",
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
                                        "node": "docs_review",
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
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.docs.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "docs_review",
                                      "cause": "exceeded_iteration_cap"
                                    }
                                  },
                                  "actions": "apply"
                                }
                              }
                            },
                            "unretryable": {
                              "on": {
                                "BranchFailed": {
                                  "target": "#review.active.reviews.running.docs.failed",
                                  "guard": {
                                    "type": "endsWith",
                                    "params": {
                                      "node": "docs_review",
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
                    "succeeded": {
                      "type": "final"
                    },
                    "failed": {
                      "type": "final"
                    },
                    "stopped": {
                      "type": "final"
                    }
                  }
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#review.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "reviews",
                      "cause": "exceeded_iteration_cap"
                    }
                  },
                  "actions": "apply"
                }
              }
            }
          }
        },
        "merge": {
          "description": "Merges the change once every review passed.",
          "initial": "ready",
          "states": {
            "ready": {
              "on": {
                "NodeStarted": {
                  "target": "running",
                  "guard": {
                    "type": "isNode",
                    "params": {
                      "node": "merge"
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
                      "node": "merge"
                    }
                  }
                },
                "NodeFailed": [
                  {
                    "target": "ready",
                    "guard": {
                      "type": "failsWith",
                      "params": {
                        "node": "merge",
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
                        "node": "merge",
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
                        "node": "merge",
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
                  "target": "#review.completed",
                  "actions": "apply"
                }
              }
            },
            "exhausted": {
              "on": {
                "RunFailed": {
                  "target": "#review.exceeded_iteration_cap",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "merge",
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
                  "target": "#review.failed",
                  "guard": {
                    "type": "endsWith",
                    "params": {
                      "node": "merge",
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
            "target": "#review.active.build",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "build"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#review.active.reviews",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "reviews"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#review.active.merge",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "merge"
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
            "target": "#review.active.build",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "build"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#review.active.reviews",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "reviews"
              }
            },
            "actions": "apply"
          },
          {
            "target": "#review.active.merge",
            "guard": {
              "type": "retriesFrom",
              "params": {
                "node": "merge"
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
